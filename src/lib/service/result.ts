import type {PlannedFile, ServiceResult, StatusResult} from './types.js'

/** What a service command prints, and where. */
export interface RenderedResult {
  stdout: string
  stderr: string
  exitCode: number
}

function isStatus(result: ServiceResult | StatusResult): result is StatusResult {
  return 'warnings' in result
}

/**
 * Renders a result the one way every service command does. With `json`:
 * the whole object on stdout. As text: success → the message and indented
 * details on stdout (warnings on stderr); failure → `Failed: <message>` and
 * indented details on stderr. The exit code is 1 when the result is not a
 * success, in both forms.
 */
export function renderResult(result: ServiceResult | StatusResult, json: boolean): RenderedResult {
  const exitCode = result.success ? 0 : 1
  if (json) return {stdout: `${JSON.stringify(result, null, 2)}\n`, stderr: '', exitCode}
  const lines = [result.success ? result.message : `Failed: ${result.message}`, ...result.details.map((line) => `  ${line}`)]
  const text = `${lines.join('\n')}\n`
  const warnings = isStatus(result) && result.warnings.length > 0 ? `${result.warnings.join('\n')}\n` : ''
  return result.success ? {stdout: text, stderr: warnings, exitCode} : {stdout: '', stderr: text + warnings, exitCode}
}

/** Prints a rendered result and sets the process exit code. */
export function printResult(result: ServiceResult | StatusResult, json: boolean): void {
  const rendered = renderResult(result, json)
  if (rendered.stdout) process.stdout.write(rendered.stdout)
  if (rendered.stderr) process.stderr.write(rendered.stderr)
  if (rendered.exitCode !== 0) process.exitCode = rendered.exitCode
}

/** How an install's dry run shows a file it would write (both supervisors): the path and mode, then the content, indented. */
export function plannedWriteLines(file: PlannedFile): string[] {
  return [`write ${file.path} (mode 0644):`, ...file.content.trimEnd().split('\n').map((line) => `  ${line}`)]
}
