//! The `looplight` binary: flags → Config → App (API routes + www/) → Server::run.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use looplight::api::ApiSettings;
use looplight::{App, Config, Server};

fn main() -> ExitCode {
    let config = Config::parse();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("looplight: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> std::io::Result<()> {
    let mut app = App::new();
    looplight::api::mount(&mut app, ApiSettings::from(&config))
        .map_err(|error| std::io::Error::other(format!("--db {}: {error}", config.db.display())))?;
    app.static_dir_with("/", &config.root, config.static_options())
        .map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!("--root {}: {error}", config.root.display()),
            )
        })?;
    let server = Server::bind(config)?;
    // The first line of stdout, flushed at once: scripts and tests read the address from it.
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "looplight listening on http://{}",
        server.local_addr()
    )?;
    stdout.flush()?;
    drop(stdout);
    server.run(app)
}
