//! A picture on a 3-D quad — the shown video frame inside its camera frustum — drawn
//! with the overlay lines into the view's colour + depth target, so it is
//! depth-composited with the splats like them (see `shaders/image_plane.wgsl`).

use super::pipeline::{Depth, Draw, render_pipeline, texture, uniform};
use crate::camera::Camera;
use nalgebra::Point3;

/// The quad's corners in clip space (w = camera z), or `None` when a corner is not in
/// front of the near plane (the picture is then not drawn; its frustum lines still are).
/// Corner order: top-left, top-right, bottom-right, bottom-left.
pub fn plane_clip_corners(camera: &Camera, corners: &[Point3<f64>; 4]) -> Option<[[f32; 4]; 4]> {
    let k = &camera.intrinsics;
    let (w, h) = (f64::from(k.width), f64::from(k.height));
    let clip = |p: &Point3<f64>| {
        let c = camera.world_to_camera * p;
        (c.z > camera.near).then(|| {
            let u = k.fx * c.x / c.z + k.cx;
            let v = k.fy * c.y / c.z + k.cy;
            let (x, y) = (2.0 * u / w - 1.0, 1.0 - 2.0 * v / h);
            [
                (x * c.z) as f32,
                (y * c.z) as f32,
                (c.z - camera.near) as f32,
                c.z as f32,
            ]
        })
    };
    // The strip's order: top-left, top-right, bottom-left, bottom-right.
    Some([
        clip(&corners[0])?,
        clip(&corners[1])?,
        clip(&corners[3])?,
        clip(&corners[2])?,
    ])
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PlaneGlobals {
    corners: [[f32; 4]; 4],
    background: [f32; 4],
}

pub struct ImagePlanePipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
}

impl ImagePlanePipeline {
    pub fn new(device: &wgpu::Device, target: wgpu::TextureFormat) -> Self {
        let both = wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT;
        let fs = wgpu::ShaderStages::FRAGMENT;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("image-plane"),
            entries: &[
                uniform(both),
                texture(1, true),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: fs,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let pipeline = render_pipeline(
            device,
            target,
            &Draw {
                label: "image-plane",
                source: include_str!("../../../shaders/image_plane.wgsl"),
                layout: &layout,
                vertex: "vs_plane",
                fragment: "fs_plane",
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                depth: Depth::Write,
                blend: None,
            },
        );
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("image-plane"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        Self {
            pipeline,
            layout,
            sampler,
        }
    }
}

/// The picture's texture (re-uploaded when its key changes) and this frame's quad.
pub struct GpuImagePlane {
    globals: wgpu::Buffer,
    picture: Option<(u64, wgpu::BindGroup)>,
    visible: bool,
}

impl GpuImagePlane {
    pub fn new(device: &wgpu::Device) -> Self {
        Self {
            globals: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("image-plane-globals"),
                size: size_of::<PlaneGlobals>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            picture: None,
            visible: false,
        }
    }

    /// Upload `image` unless the picture with this `key` is already on the GPU.
    pub fn set_picture(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pipeline: &ImagePlanePipeline,
        key: u64,
        image: &image::RgbaImage,
    ) {
        if self.picture.as_ref().is_some_and(|(k, _)| *k == key) {
            return;
        }
        let size = wgpu::Extent3d {
            width: image.width().max(1),
            height: image.height().max(1),
            depth_or_array_layers: 1,
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("image-plane"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        if image.width() > 0 && image.height() > 0 {
            queue.write_texture(
                texture.as_image_copy(),
                image.as_raw(),
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(4 * image.width()),
                    rows_per_image: None,
                },
                size,
            );
        }
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("image-plane"),
            layout: &pipeline.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.globals.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::Sampler(&pipeline.sampler),
                },
            ],
        });
        self.picture = Some((key, group));
    }

    /// This frame's quad (`None`: nothing drawn), mixed over `background` by `opacity`.
    pub fn set_quad(
        &mut self,
        queue: &wgpu::Queue,
        corners: Option<[[f32; 4]; 4]>,
        background: [f32; 3],
        opacity: f32,
    ) {
        self.visible = corners.is_some() && self.picture.is_some();
        if let Some(corners) = corners {
            let g = PlaneGlobals {
                corners,
                background: [background[0], background[1], background[2], opacity],
            };
            queue.write_buffer(&self.globals, 0, bytemuck::bytes_of(&g));
        }
    }

    /// Record the draw into an open pass with a [`DEPTH_FORMAT`] attachment.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, pipeline: &ImagePlanePipeline) {
        if let (true, Some((_, group))) = (self.visible, &self.picture) {
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.draw(0..4, 0..1);
        }
    }
}
