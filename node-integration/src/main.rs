//! The `streamd` binary: parses the command line and runs the chosen command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = streamd::cli::Cli::parse();
    if let Err(e) = streamd::cli::init_logging(&cli) {
        eprintln!("Error: {e:#}");
        return std::process::ExitCode::from(2);
    }
    match streamd::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
