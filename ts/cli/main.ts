// The `ike` command. Subcommands are added as the layers they drive land.
const [, , command, ...rest] = process.argv;

const usage = `usage: ike <command> [options]

commands:
  help        this text
`;

function main(): number {
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return 0;
    default:
      process.stderr.write(`ike: unknown command '${command}' (try 'ike --help')\n`);
      void rest;
      return 2;
  }
}

process.exitCode = main();
