import {commands} from '@oclif/plugin-help'

/**
 * oclif's own `help` command, compiled into the CLI like every other command
 * rather than loaded as a plugin: a plugin costs a package lookup and a
 * second copy of `@oclif/core` on every start.
 */
export default commands.help
