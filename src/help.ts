import {CommandHelp, Help} from '@oclif/core/help'

/**
 * oclif's help renders every text it prints (descriptions, summaries,
 * examples, flag help) through ejs, which compiles a function for each
 * text. ejs gives back a text without a tag (`<%`) unchanged, so only texts
 * with one are handed to it. Root help shows each command's description: at
 * about a tenth of `--help`'s start-up, that compiling was its largest cost
 * after oclif's own loading.
 */
const templatesOnly =
  (render: (input: string) => string) =>
  (input: string): string =>
    input.includes('<%') ? render(input) : input

class TemplatesOnlyCommandHelp extends CommandHelp {
  constructor(...args: ConstructorParameters<typeof CommandHelp>) {
    super(...args)
    this.render = templatesOnly(this.render)
  }
}

/** oclif's help class for this CLI (package.json: oclif.helpClass): oclif's own, rendering as above. */
export class AmpDistroHelp extends Help {
  protected CommandHelpClass = TemplatesOnlyCommandHelp

  constructor(...args: ConstructorParameters<typeof Help>) {
    super(...args)
    this.render = templatesOnly(this.render)
  }
}
