//! Render to a texture and read it back: for tests, screenshots and `loupe render`.

use super::{GpuContext, GpuError, GpuSplats, SplatPipeline};
use crate::camera::Camera;
use crate::reference::RenderSettings;
use crate::splats::Splats;

/// The format offscreen images use: 8-bit, no sRGB conversion, like the reference.
pub const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// Render `splats` from `camera` into an image of the camera's size.
pub fn render_splats(
    ctx: &GpuContext,
    splats: &Splats,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<image::RgbaImage, GpuError> {
    let pipeline = SplatPipeline::new(&ctx.device, FORMAT);
    let mut gpu = GpuSplats::upload(&ctx.device, &pipeline, splats);
    render_uploaded(ctx, &pipeline, &mut gpu, camera, settings)
}

/// Render already uploaded splats (benchmarks reuse the upload across frames).
pub fn render_uploaded(
    ctx: &GpuContext,
    pipeline: &SplatPipeline,
    gpu: &mut GpuSplats,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<image::RgbaImage, GpuError> {
    let (w, h) = (camera.intrinsics.width, camera.intrinsics.height);
    let texture = ctx.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("offscreen"),
        size: wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: FORMAT,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
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
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("offscreen"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(if settings.transparent {
                        wgpu::Color::TRANSPARENT
                    } else {
                        wgpu::Color { r, g, b, a: 1.0 }
                    }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        gpu.draw(&mut pass, pipeline);
    }
    ctx.queue.submit([encoder.finish()]);
    let mut image = read_texture(ctx, &texture)?;
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
