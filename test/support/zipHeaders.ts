/**
 * A zip whose headers lie: every uncompressed size recorded for `content.xml` (local file
 * header, central directory) is replaced by `claimed`. For tests of readers that must not trust
 * them.
 */
export function claimingSize(zipBytes: Uint8Array, claimed: number): Buffer {
  const zip = Buffer.from(zipBytes)
  const name = Buffer.from('content.xml')
  for (const [signature, sizeAt, nameAt] of [
    [0x04034b50, 22, 30], // local file header
    [0x02014b50, 24, 46], // central directory entry
  ] as const) {
    for (let at = zip.indexOf(name); at >= 0; at = zip.indexOf(name, at + 1)) {
      const header = at - nameAt
      if (header >= 0 && zip.readUInt32LE(header) === signature) {
        zip.writeUInt32LE(claimed, header + sizeAt)
      }
    }
  }
  return zip
}
