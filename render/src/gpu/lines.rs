//! Overlay lines (frusta, axes, grid, bounding boxes) drawn into the same colour and
//! depth target as the splats, before them, so each splat is blended over the lines it
//! is in front of, and hidden by those in front of it. Lines are opaque: a
//! translucent colour is mixed with the background first, which looks the same over an
//! empty background and keeps depth writes meaningful.

use super::pipeline::{Depth, Draw, render_pipeline, storage, uniform};
use crate::camera::Camera;
use crate::scene::{Segment, clip_camera};
use wgpu::util::DeviceExt as _;

/// The depth format of the 3-D views' targets.
pub const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;

/// Depth as stored for a camera-space `z` (≥ near): `1 - near / z`, in [0, 1), affine in
/// `1/z` so it interpolates exactly across a screen-space primitive. The splat shader
/// uses the same convention for each splat's centre.
pub fn depth_of(z: f64, near: f64) -> f32 {
    (1.0 - near / z) as f32
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LineInstance {
    /// u, v (pixels), depth, half width (pixels).
    pub a: [f32; 4],
    /// u, v (pixels), depth, unused.
    pub b: [f32; 4],
    /// Premultiplied colour, alpha 1.
    pub color: [f32; 4],
}

/// Project and near-clip `segments` for `camera`: lines `width_px` wide whose colours
/// are mixed over `background` (linear 0–1 RGB) by their alpha.
pub fn project_lines(
    camera: &Camera,
    segments: &[Segment],
    width_px: f32,
    background: [f32; 3],
) -> Vec<LineInstance> {
    let k = &camera.intrinsics;
    let near = camera.near;
    segments
        .iter()
        .filter_map(|s| {
            let [a, b] = clip_camera(camera, &s.a, &s.b)?;
            let px = |p: nalgebra::Point3<f64>, w: f32| {
                [
                    (k.fx * p.x / p.z + k.cx) as f32,
                    (k.fy * p.y / p.z + k.cy) as f32,
                    depth_of(p.z, near),
                    w,
                ]
            };
            let alpha = f32::from(s.rgba[3]) / 255.0;
            let mix = |c: u8, bg: f32| f32::from(c) / 255.0 * alpha + bg * (1.0 - alpha);
            Some(LineInstance {
                a: px(a, width_px / 2.0),
                b: px(b, 0.0),
                color: [
                    mix(s.rgba[0], background[0]),
                    mix(s.rgba[1], background[1]),
                    mix(s.rgba[2], background[2]),
                    1.0,
                ],
            })
        })
        .collect()
}

/// The line pipeline, made once per device and colour format.
pub struct LinePipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
}

impl LinePipeline {
    pub fn new(device: &wgpu::Device, target: wgpu::TextureFormat) -> Self {
        let vs = wgpu::ShaderStages::VERTEX;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("overlay-lines"),
            entries: &[uniform(vs), storage(1, vs, true)],
        });
        let pipeline = render_pipeline(
            device,
            target,
            &Draw {
                label: "overlay-lines",
                source: include_str!("../../../shaders/overlay_lines.wgsl"),
                layout: &layout,
                vertex: "vs_line",
                fragment: "fs_line",
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                depth: Depth::Write,
                blend: None,
            },
        );
        Self { pipeline, layout }
    }
}

/// Lines on the GPU; the buffer grows as needed and is rewritten every frame.
pub struct GpuLines {
    globals: wgpu::Buffer,
    buffer: wgpu::Buffer,
    capacity: usize,
    group: wgpu::BindGroup,
    count: u32,
}

impl GpuLines {
    pub fn new(device: &wgpu::Device, pipeline: &LinePipeline) -> Self {
        let globals = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("overlay-lines-globals"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let (buffer, group) = Self::storage(device, pipeline, &globals, 64);
        Self {
            globals,
            buffer,
            capacity: 64,
            group,
            count: 0,
        }
    }

    fn storage(
        device: &wgpu::Device,
        pipeline: &LinePipeline,
        globals: &wgpu::Buffer,
        capacity: usize,
    ) -> (wgpu::Buffer, wgpu::BindGroup) {
        let buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("overlay-lines"),
            contents: &vec![0u8; capacity * size_of::<LineInstance>()],
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        });
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("overlay-lines"),
            layout: &pipeline.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: globals.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: buffer.as_entire_binding(),
                },
            ],
        });
        (buffer, group)
    }

    /// Write this frame's lines for a viewport of `size` pixels.
    pub fn set(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pipeline: &LinePipeline,
        lines: &[LineInstance],
        size: [u32; 2],
    ) {
        if lines.len() > self.capacity {
            self.capacity = lines.len().next_power_of_two();
            (self.buffer, self.group) =
                Self::storage(device, pipeline, &self.globals, self.capacity);
        }
        let g = [size[0] as f32, size[1] as f32, 0.0, 0.0];
        queue.write_buffer(&self.globals, 0, bytemuck::cast_slice(&g));
        if !lines.is_empty() {
            queue.write_buffer(&self.buffer, 0, bytemuck::cast_slice(lines));
        }
        self.count = lines.len() as u32;
    }

    /// Record the draw into an open pass with a [`DEPTH_FORMAT`] attachment.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, pipeline: &LinePipeline) {
        if self.count == 0 {
            return;
        }
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.draw(0..4, 0..self.count);
    }
}
