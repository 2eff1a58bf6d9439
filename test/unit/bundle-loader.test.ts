import {expect} from 'chai'

import {compileCacheDir} from '../../src/bundle-loader.js'

describe('compileCacheDir', () => {
  it('uses ~/.cache/amplifier-distro/compile-cache on Linux', () => {
    expect(compileCacheDir({}, 'linux', '/home/ada')).to.equal('/home/ada/.cache/amplifier-distro/compile-cache')
  })

  it('follows an absolute XDG_CACHE_HOME and ignores a relative one', () => {
    expect(compileCacheDir({XDG_CACHE_HOME: '/var/cache/ada'}, 'linux', '/home/ada')).to.equal('/var/cache/ada/amplifier-distro/compile-cache')
    expect(compileCacheDir({XDG_CACHE_HOME: 'cache'}, 'linux', '/home/ada')).to.equal('/home/ada/.cache/amplifier-distro/compile-cache')
  })

  it('uses ~/Library/Caches on macOS and LOCALAPPDATA on Windows', () => {
    expect(compileCacheDir({XDG_CACHE_HOME: '/x'}, 'darwin', '/Users/ada')).to.equal('/Users/ada/Library/Caches/amplifier-distro/compile-cache')
    expect(compileCacheDir({LOCALAPPDATA: '/c/Users/ada/AppData/Local'}, 'win32', '/c/Users/ada')).to.equal('/c/Users/ada/AppData/Local/amplifier-distro/compile-cache')
  })

  it('is off with NODE_DISABLE_COMPILE_CACHE, and without an absolute home', () => {
    expect(compileCacheDir({NODE_DISABLE_COMPILE_CACHE: '1'}, 'linux', '/home/ada')).to.equal(undefined)
    expect(compileCacheDir({}, 'linux', '')).to.equal(undefined)
  })
})
