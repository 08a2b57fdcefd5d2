//! The `tessera` binary: parse the command line, start logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tessera::cli::{Cli, Command};

/// Exit code for bad flags, bad files and bad values (as clap uses for usage errors).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Help and version go to stdout with success, as usual.
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, not clap's full usage block: scripts and humans both read it.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("tessera: {}", first.trim_start_matches("error: "));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(e) = tessera::telemetry::init(&cli.log) {
        eprintln!("tessera: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let result = match &cli.command {
        Command::Simulate(args) => tessera::cli::simulate::run(args),
        Command::Plugin(args) => tessera::cli::plugin::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
