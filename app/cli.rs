//! Command line: `loupe` opens the GUI; subcommands run headless jobs.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "loupe",
    version,
    about = "Workbench for multimodal grounding and 3D / biomedical dataset inspection"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the GUI with these files or folders (images, MIG-Bench folders, .ply, .splat, uCO3D roots, .tar shards).
    Open {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Render Gaussian splats (.ply / .splat) to a PNG offscreen.
    Render(crate::commands::render::RenderArgs),
    /// Run the grounding model (Qwen2-VL / Migician) on images and an instruction, or on every item of a benchmark (--bench).
    Ground(crate::commands::ground::GroundArgs),
    /// Index BIOMEDICA tar shards (files or folders) headless, writing their sidecar indexes.
    Index(crate::commands::index::IndexArgs),
    /// Print speed figures as a table (see BENCHMARKS.md).
    Bench(crate::commands::bench::BenchArgs),
    /// Render splats from a list of cameras with the CPU reference renderer (fixture makers).
    #[command(hide = true)]
    RenderCameras(crate::commands::render_cameras::RenderCamerasArgs),
    /// Embed BIOMEDICA shards with BMCA-CLIP (or any OpenCLIP ViT) into an index file.
    Embed(crate::commands::embed::EmbedArgs),
    /// Search embedding indexes with a text query or an image.
    Search(crate::commands::embed::SearchArgs),
    /// Export a grounding review (COCO JSON, Qwen JSONL, metrics CSV) from its sidecar.
    Export(crate::commands::export::ExportArgs),
    /// Score predictions on a MIG-Bench file exactly as Migician's evaluation does.
    Eval(crate::commands::eval::EvalArgs),
    /// A burst of autosaved review edits (for the crash test; not for users).
    #[command(hide = true)]
    ReviewStress(crate::commands::review_stress::StressArgs),
}

/// Start the GUI, opening `open` once it is up.
pub fn run_gui(open: Vec<PathBuf>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Loupe")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([800.0, 500.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "Loupe",
        options,
        Box::new(move |cc| {
            let app = crate::app::LoupeApp::new(cc, crate::app::StartOptions { open })?;
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the window: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn open_takes_paths_and_requires_one() {
        let cli = Cli::try_parse_from(["loupe", "open", "a.ply", "b"]).unwrap();
        match cli.command {
            Some(Command::Open { paths }) => {
                assert_eq!(paths, vec![PathBuf::from("a.ply"), PathBuf::from("b")])
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["loupe", "open"]).is_err());
        assert!(Cli::try_parse_from(["loupe"]).unwrap().command.is_none());
        let r = Cli::try_parse_from([
            "loupe", "render", "s.ply", "--out", "f.png", "--eye", "1,2,3",
        ])
        .unwrap();
        match r.command {
            Some(Command::Render(args)) => assert_eq!(args.eye, Some([1.0, 2.0, 3.0])),
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["loupe", "render", "s.ply", "--out", "f.png", "--eye", "1,2"])
                .is_err()
        );
    }

    #[test]
    fn ground_takes_images_or_a_benchmark() {
        assert!(Cli::try_parse_from(["loupe", "ground", "--model-dir", "m"]).is_err());
        let g = Cli::try_parse_from([
            "loupe",
            "ground",
            "--model-dir",
            "m",
            "--bench",
            "b.json",
            "--out",
            "p.jsonl",
            "--shard",
            "1/4",
            "--resume",
        ])
        .unwrap();
        match g.command {
            Some(Command::Ground(a)) => {
                assert!(a.resume && a.images.is_empty() && a.shard.as_deref() == Some("1/4"))
            }
            other => panic!("{other:?}"),
        }
        let e = Cli::try_parse_from([
            "loupe",
            "eval",
            "b.json",
            "--predictions",
            "a.jsonl",
            "b.jsonl",
            "--y-correction",
            "migician",
        ])
        .unwrap();
        match e.command {
            Some(Command::Eval(a)) => assert_eq!(a.predictions.len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
