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
            // Help and version go to stdout with success, as usual. A reader that closed the
            // pipe early (`tessera --help | head`) is not an error worth a panic.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{e}").and_then(|()| out.flush());
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `tessera` alone: the full usage, on stderr, as a usage error (nothing was run).
            eprint!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            // One line, not clap's full usage block: scripts and humans both read it. The
            // message may continue past its first line (a missing required flag is named on
            // the next one), so join everything before the blank line that starts the usage.
            let text = e.to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let line = message.join(" ");
            let line = if line.is_empty() {
                "invalid arguments"
            } else {
                &line
            };
            eprintln!("tessera: {}", line.trim_start_matches("error: "));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(e) = tessera::telemetry::init(&cli.log) {
        eprintln!("tessera: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let result = match &cli.command {
        Command::Simulate(args) => tessera::cli::simulate::run(args),
        Command::Slices(args) => tessera::cli::slices::run(args),
        Command::Extender(args) => tessera::cli::extender::run(args),
        Command::Plugin(args) => tessera::cli::plugin::run(args),
        Command::Allocate(args) => tessera::cli::allocate::run(args),
        Command::Recommend(args) => tessera::cli::recommend::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {}", tessera::cli::error_line(e.as_ref()));
            ExitCode::from(EXIT_USAGE)
        }
    }
}
