//! The `loupe` binary: parse the command line, set up logging, run.

use clap::Parser;
use loupe::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "info,wgpu=warn,naga=warn,eframe=warn,egui_wgpu=warn",
                )
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => loupe::cli::run_gui(Vec::new()),
        Some(Command::Open { paths }) => loupe::cli::run_gui(paths),
        Some(Command::Render(args)) => loupe::commands::render::run(&args),
        Some(Command::Ground(args)) => loupe::commands::ground::run(&args),
        Some(Command::Index(args)) => loupe::commands::index::run(&args),
        Some(Command::Bench(args)) => loupe::commands::bench::run(&args),
        Some(Command::RenderCameras(args)) => loupe::commands::render_cameras::run(&args),
        Some(Command::Export(args)) => loupe::commands::export::run(&args),
        Some(Command::Eval(args)) => loupe::commands::eval::run(&args),
        Some(Command::Embed(args)) => loupe::commands::embed::embed(&args),
        Some(Command::Search(args)) => loupe::commands::embed::search(&args),
        Some(Command::ReviewStress(args)) => loupe::commands::review_stress::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
