/** The API's answers as the console reads them (the README's "API"). */

export interface Actor {
  token_id: number | null
  name: string
}

export interface Item {
  part_number: string
  description: string
  item_type: string
  properties: Record<string, unknown>
  version: number
  created_at: string
  updated_at: string
  created_by?: Actor | null
  updated_by?: Actor | null
}

export interface RevisionFile {
  name: string
  size: number
  sha256: string
  content_type: string
}

export interface Revision {
  part_number: string
  revision_number: number
  comment: string
  file: RevisionFile | null
  created_at: string
  created_by?: Actor | null
}

export interface BomChild {
  part_number: string
  quantity: number
  reference_designators: string[]
  description: string
  item_type: string
}

export interface HistoryEntry {
  id: number
  type: string
  data: Record<string, unknown>
  actor: Actor | null
  created_at: string
}
