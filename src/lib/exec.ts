import {execFile} from 'node:child_process'

import type {Exec} from './service/types.js'

/** The real command runner: `execFile`, with failures to start reported as exit code 127. */
export const execCommand: Exec = (file, args, options = {}) =>
  new Promise((resolve) => {
    execFile(file, args, {env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024}, (error, stdout, stderr) => {
      if (!error) {
        resolve({code: 0, stdout, stderr})
        return
      }

      const code = typeof error.code === 'number' ? error.code : 127
      resolve({code, stdout: stdout ?? '', stderr: stderr || (code === 127 ? String(error.message) : '')})
    })
  })
