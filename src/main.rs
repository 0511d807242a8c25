//! `mpnn`: the command-line front end. See `mpnn --help`.

mod cli;

use clap::Parser;

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MPNN_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = cli::args::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
