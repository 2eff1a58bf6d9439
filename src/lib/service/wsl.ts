import type {ServiceContext} from './types.js'

/** Microsoft's reference for `.wslconfig`, where `vmIdleTimeout` is described. */
export const WSL_CONFIG_DOCS = 'https://learn.microsoft.com/en-us/windows/wsl/wsl-config#main-wsl-settings'

/** True inside Windows Subsystem for Linux: its kernels name Microsoft in their release, and WSL sets `WSL_DISTRO_NAME`. */
export function isWsl(ctx: Pick<ServiceContext, 'env' | 'osRelease'>): boolean {
  return Boolean(ctx.env.WSL_DISTRO_NAME) || (ctx.osRelease ?? '').toLowerCase().includes('microsoft')
}

/**
 * What install and status tell people on WSL: WSL shuts its virtual
 * machine down once it is idle (no terminal open), which stops every
 * systemd service in it, this one included; `vmIdleTimeout` decides when.
 * Empty elsewhere.
 */
export function wslNote(ctx: Pick<ServiceContext, 'env' | 'osRelease'>): string[] {
  if (!isWsl(ctx)) return []
  return [
    'Note: WSL shuts its virtual machine down once no terminal has been open for a while, and that stops every systemd service in it, this one included.',
    '  To keep it running, set vmIdleTimeout (milliseconds the VM may stay idle, 60000 by default) under [wsl2] in %UserProfile%\\.wslconfig on Windows, then run "wsl --shutdown".',
    `  See ${WSL_CONFIG_DOCS}`,
  ]
}
