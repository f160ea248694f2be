/** A refusal's message, announced to screen readers; nothing when there is none. */
export function ErrorText({
  message,
  id,
  testId,
}: {
  message: string | null | false | undefined
  id?: string
  testId?: string
}) {
  if (!message) return null
  return (
    <p id={id} class="field-error" role="alert" data-testid={testId}>
      {message}
    </p>
  )
}
