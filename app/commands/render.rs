//! `loupe render`: one splat image from the command line, through the same wgpu
//! pipeline as the app (offscreen).

use anyhow::Context as _;
use loupe_render::camera::{Camera, Intrinsics, OrbitController};
use loupe_render::gpu::{GpuContext, offscreen};
use loupe_render::io::SceneFile;
use loupe_render::reference::RenderSettings;
use nalgebra::{Point3, Vector3};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// A .ply (3DGS or point cloud) or .splat file.
    pub input: PathBuf,
    /// Where to write the PNG.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1280)]
    pub width: u32,
    #[arg(long, default_value_t = 720)]
    pub height: u32,
    /// Camera position "x,y,z" (default: framing the whole scene).
    #[arg(long, value_parser = parse_vec3)]
    pub eye: Option<[f64; 3]>,
    /// Point the camera looks at, "x,y,z" (default: the scene's centre).
    #[arg(long, value_parser = parse_vec3)]
    pub target: Option<[f64; 3]>,
    /// World up direction, "x,y,z" (3DGS captures are often −y up: "0,-1,0").
    #[arg(long, value_parser = parse_vec3, default_value = "0,0,1")]
    pub up: [f64; 3],
    /// Vertical field of view in degrees.
    #[arg(long, default_value_t = 50.0)]
    pub fov: f64,
    #[arg(long, default_value_t = 3)]
    pub sh_degree: u32,
    /// Background "r,g,b" in [0, 1].
    #[arg(long, value_parser = parse_vec3, default_value = "0,0,0")]
    pub background: [f64; 3],
    /// Write a transparent background (alpha = splat coverage) instead.
    #[arg(long)]
    pub transparent: bool,
}

fn parse_vec3(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>().map_err(|e| format!("'{p}': {e}")))
        .collect::<Result<_, _>>()?;
    <[f64; 3]>::try_from(v)
        .map_err(|v| format!("expected three comma-separated numbers, got {}", v.len()))
}

pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let (scene, report) = loupe_render::io::read_path(&args.input, &mut |_| true)?;
    if report.skipped_non_finite > 0 {
        tracing::warn!(
            "{}: skipped {} non-finite splats",
            args.input.display(),
            report.skipped_non_finite
        );
    }
    let SceneFile::Splats(splats) = scene else {
        anyhow::bail!(
            "{}: holds a point cloud, not Gaussian splats",
            args.input.display()
        );
    };
    let framing = OrbitController::framing(&splats.means);
    let target = args
        .target
        .map_or(framing.target, |t| Point3::new(t[0], t[1], t[2]));
    let eye = args
        .eye
        .map_or_else(|| framing.eye(), |e| Point3::new(e[0], e[1], e[2]));
    let intrinsics = Intrinsics::from_fov_y(args.fov.to_radians(), args.width, args.height);
    let mut camera = Camera::look_at(eye, target, Vector3::from(args.up), intrinsics);
    camera.near = 0.01 * (target - eye).norm().max(1e-3);
    let settings = RenderSettings {
        sh_degree: args.sh_degree,
        background: args.background.map(|v| v as f32),
        transparent: args.transparent,
        ..Default::default()
    };
    let ctx = GpuContext::headless()?;
    let image = offscreen::render_splats(&ctx, &splats, &camera, &settings)?;
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .context("cannot encode the PNG")?;
    crate::atomic::write_atomic(&args.out, &png)?;
    tracing::info!("{} splats → {}", splats.len(), args.out.display());
    Ok(())
}
