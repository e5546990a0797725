//! `loupe render-cameras` (hidden): the CPU reference renderer over a list of cameras,
//! for fixture makers (`scripts/fixtures/make_uco3d_fixture.py` renders uCO3D videos
//! with it). Writes `<name>.png` (over white) and `<name>_mask.png` (foreground coverage).

use anyhow::Context as _;
use loupe_render::camera::{Camera, Intrinsics};
use loupe_render::io::SceneFile;
use loupe_render::reference::{self, RenderSettings};
use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct RenderCamerasArgs {
    /// Splats: a gsplat PNG folder, .ply or .splat.
    pub splats: PathBuf,
    /// JSON list of `{name, width, height, fx, fy, cx, cy, R (row-major world→camera), t}`.
    #[arg(long)]
    pub cameras: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(serde::Deserialize)]
struct CameraSpec {
    name: String,
    width: u32,
    height: u32,
    fx: f64,
    fy: f64,
    cx: f64,
    cy: f64,
    #[serde(rename = "R")]
    r: [f64; 9],
    t: [f64; 3],
}

pub fn run(args: &RenderCamerasArgs) -> anyhow::Result<()> {
    let (scene, _) = loupe_render::io::read_path(&args.splats, &mut |_| true)?;
    let SceneFile::Splats(splats) = scene else {
        anyhow::bail!("{}: not splats", args.splats.display());
    };
    let text = std::fs::read_to_string(&args.cameras)
        .with_context(|| format!("reading {}", args.cameras.display()))?;
    let specs: Vec<CameraSpec> =
        serde_json::from_str(&text).with_context(|| format!("{}", args.cameras.display()))?;
    std::fs::create_dir_all(&args.out)?;
    let full = RenderSettings {
        transparent: true,
        ..Default::default()
    };
    let foreground = RenderSettings {
        transparent: true,
        foreground_only: true,
        ..Default::default()
    };
    for spec in specs {
        let rotation = Rotation3::from_matrix(&Matrix3::from_row_slice(&spec.r));
        let cam = Camera {
            intrinsics: Intrinsics {
                fx: spec.fx,
                fy: spec.fy,
                cx: spec.cx,
                cy: spec.cy,
                width: spec.width,
                height: spec.height,
            },
            world_to_camera: Isometry3::from_parts(
                Translation3::from(Vector3::from(spec.t)),
                UnitQuaternion::from_rotation_matrix(&rotation),
            ),
            near: 0.01,
            far: 1000.0,
        };
        // Over white, as uCO3D's reference renders are; the mask is the coverage of the
        // foreground splats (fg_mask) alone.
        let pixels = reference::render_rgba(&splats, &cam, &full);
        let mut image = image::RgbImage::new(spec.width, spec.height);
        for (dst, [r, g, b, a]) in image.pixels_mut().zip(&pixels) {
            let q = |v: f64| ((v + 1.0 - a).clamp(0.0, 1.0) * 255.0).round() as u8;
            *dst = image::Rgb([q(*r), q(*g), q(*b)]);
        }
        let path = args.out.join(format!("{}.png", spec.name));
        image
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        let fg = reference::render_rgba(&splats, &cam, &foreground);
        let mut mask = image::GrayImage::new(spec.width, spec.height);
        for (dst, px) in mask.pixels_mut().zip(&fg) {
            *dst = image::Luma([(px[3].clamp(0.0, 1.0) * 255.0).round() as u8]);
        }
        let path = args.out.join(format!("{}_mask.png", spec.name));
        mask.save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
