//! Render to a texture and read it back: for tests, screenshots and `loupe render`.

use super::{
    GpuContext, GpuError, GpuImagePlane, GpuLines, GpuSplats, ImagePlanePipeline, LineInstance,
    LinePipeline, SplatPipeline, ViewTarget, plane_clip_corners,
};
use crate::camera::Camera;
use crate::reference::RenderSettings;
use crate::splats::Splats;
use nalgebra::Point3;

/// The format offscreen images use: 8-bit, no sRGB conversion, like the reference.
pub const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// Render `splats` from `camera` into an image of the camera's size.
pub fn render_splats(
    ctx: &GpuContext,
    splats: &Splats,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<image::RgbaImage, GpuError> {
    render_scene(ctx, splats, &[], camera, settings)
}

/// Render `splats` and overlay `lines` (from [`super::project_lines`] for the same
/// camera), depth-composited, into an image of the camera's size.
pub fn render_scene(
    ctx: &GpuContext,
    splats: &Splats,
    lines: &[LineInstance],
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<image::RgbaImage, GpuError> {
    render_scene_with(
        ctx,
        splats,
        &Overlays {
            lines,
            picture: None,
        },
        camera,
        settings,
    )
}

/// What is depth-composited with the splats.
pub struct Overlays<'a> {
    pub lines: &'a [LineInstance],
    /// A picture on a 3-D quad (corners top-left, top-right, bottom-right, bottom-left)
    /// at an opacity.
    pub picture: Option<(&'a image::RgbaImage, [Point3<f64>; 4], f32)>,
}

/// [`render_scene`] with every kind of overlay.
pub fn render_scene_with(
    ctx: &GpuContext,
    splats: &Splats,
    overlays: &Overlays<'_>,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<image::RgbaImage, GpuError> {
    let pipeline = SplatPipeline::new(&ctx.device, FORMAT);
    let mut gpu = GpuSplats::upload(&ctx.device, &pipeline, splats);
    let line_pipeline = LinePipeline::new(&ctx.device, FORMAT);
    let mut gpu_lines = GpuLines::new(&ctx.device, &line_pipeline);
    let size = [camera.intrinsics.width, camera.intrinsics.height];
    gpu_lines.set(
        &ctx.device,
        &ctx.queue,
        &line_pipeline,
        overlays.lines,
        size,
    );
    let plane_pipeline = ImagePlanePipeline::new(&ctx.device, FORMAT);
    let mut plane = GpuImagePlane::new(&ctx.device);
    if let Some((image, corners, opacity)) = &overlays.picture {
        plane.set_picture(&ctx.device, &ctx.queue, &plane_pipeline, 1, image);
        plane.set_quad(
            &ctx.queue,
            plane_clip_corners(camera, corners),
            settings.background,
            *opacity,
        );
    }
    render_with(
        ctx,
        &pipeline,
        &mut gpu,
        Some(Extras {
            lines: (&line_pipeline, &gpu_lines),
            plane: (&plane_pipeline, &plane),
        }),
        camera,
        settings,
    )
}

struct Extras<'a> {
    lines: (&'a LinePipeline, &'a GpuLines),
    plane: (&'a ImagePlanePipeline, &'a GpuImagePlane),
}

/// Render already uploaded splats (benchmarks reuse the upload across frames).
pub fn render_uploaded(
    ctx: &GpuContext,
    pipeline: &SplatPipeline,
    gpu: &mut GpuSplats,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<image::RgbaImage, GpuError> {
    render_with(ctx, pipeline, gpu, None, camera, settings)
}

fn render_with(
    ctx: &GpuContext,
    pipeline: &SplatPipeline,
    gpu: &mut GpuSplats,
    extras: Option<Extras<'_>>,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<image::RgbaImage, GpuError> {
    let size = [camera.intrinsics.width, camera.intrinsics.height];
    let target = ViewTarget::new(&ctx.device, FORMAT, size, wgpu::TextureUsages::COPY_SRC);
    gpu.set_view(&ctx.queue, camera, settings, [0.0, 0.0]);
    let order = super::splat_pipeline::sort_back_to_front(gpu.means(), camera);
    // Culled splats (by opacity or mask) are skipped by the projection pass.
    gpu.set_order(&ctx.queue, &order);
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("offscreen"),
        });
    gpu.preprocess(&mut encoder, pipeline);
    {
        let [r, g, b] = settings.background.map(f64::from);
        let clear = if settings.transparent {
            wgpu::Color::TRANSPARENT
        } else {
            wgpu::Color { r, g, b, a: 1.0 }
        };
        let mut pass = target.begin_pass(&mut encoder, clear);
        if let Some(extras) = &extras {
            extras.lines.1.draw(&mut pass, extras.lines.0);
            extras.plane.1.draw(&mut pass, extras.plane.0);
        }
        gpu.draw(&mut pass, pipeline);
    }
    ctx.queue.submit([encoder.finish()]);
    let mut image = read_texture(ctx, target.color())?;
    if settings.transparent {
        // The target holds premultiplied colour; PNG wants straight alpha.
        for p in image.pixels_mut() {
            let a = u32::from(p[3]);
            for c in 0..3 {
                p[c] = (u32::from(p[c]) * 255 + a / 2)
                    .checked_div(a)
                    .map_or(0, |v| v.min(255) as u8);
            }
        }
    }
    Ok(image)
}

/// Copy a texture to the CPU (rows are padded to 256 bytes on the GPU side).
pub fn read_texture(
    ctx: &GpuContext,
    texture: &wgpu::Texture,
) -> Result<image::RgbaImage, GpuError> {
    let (w, h) = (texture.width(), texture.height());
    let unpadded = w as usize * 4;
    let padded = unpadded.div_ceil(256) * 256;
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: (padded * h as usize) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("readback"),
        });
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded as u32),
                rows_per_image: None,
            },
        },
        wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
    );
    let index = ctx.queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    buffer
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
    ctx.device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: Some(std::time::Duration::from_secs(60)),
        })
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    rx.recv()
        .map_err(|e| GpuError::Readback(e.to_string()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let data = buffer
        .slice(..)
        .get_mapped_range()
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let pixels: Vec<u8> = data
        .chunks_exact(padded)
        .flat_map(|row| row[..unpadded].iter().copied())
        .collect();
    image::RgbaImage::from_raw(w, h, pixels)
        .ok_or_else(|| GpuError::Readback("wrong pixel count".into()))
}
