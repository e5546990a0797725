//! A 3-D view's own colour + depth target, and the pass that composites it into a
//! frame that has no depth buffer (egui's). Splats and overlay lines are drawn here
//! so they can be depth-composited; the result is premultiplied colour.

use super::lines::DEPTH_FORMAT;
use super::pipeline::{Depth, Draw, OVER, render_pipeline, texture, uniform};
use wgpu::util::DeviceExt as _;

/// Colour and depth textures of one size.
pub struct ViewTarget {
    color: wgpu::Texture,
    color_view: wgpu::TextureView,
    depth_view: wgpu::TextureView,
}

impl ViewTarget {
    /// `usage` is added to the colour texture's (COPY_SRC to read it back,
    /// TEXTURE_BINDING to composite it).
    pub fn new(
        device: &wgpu::Device,
        format: wgpu::TextureFormat,
        size: [u32; 2],
        usage: wgpu::TextureUsages,
    ) -> Self {
        let texture = |label, format, usage| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d {
                    width: size[0].max(1),
                    height: size[1].max(1),
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage,
                view_formats: &[],
            })
        };
        let color = texture(
            "view-color",
            format,
            wgpu::TextureUsages::RENDER_ATTACHMENT | usage,
        );
        let depth = texture(
            "view-depth",
            DEPTH_FORMAT,
            wgpu::TextureUsages::RENDER_ATTACHMENT,
        );
        Self {
            color_view: color.create_view(&wgpu::TextureViewDescriptor::default()),
            depth_view: depth.create_view(&wgpu::TextureViewDescriptor::default()),
            color,
        }
    }

    pub fn size(&self) -> [u32; 2] {
        [self.color.width(), self.color.height()]
    }

    pub fn color(&self) -> &wgpu::Texture {
        &self.color
    }

    /// Begin the scene pass: colour cleared to `clear`, depth to the far plane.
    pub fn begin_pass<'e>(
        &self,
        encoder: &'e mut wgpu::CommandEncoder,
        clear: wgpu::Color,
    ) -> wgpu::RenderPass<'e> {
        encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("view"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &self.color_view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(clear),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                view: &self.depth_view,
                depth_ops: Some(wgpu::Operations {
                    load: wgpu::LoadOp::Clear(1.0),
                    store: wgpu::StoreOp::Discard,
                }),
                stencil_ops: None,
            }),
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        })
    }
}

/// Draws a [`ViewTarget`]'s colour over another frame (premultiplied "over").
pub struct CompositePipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
}

/// A target bound for compositing, with where it goes in the frame.
pub struct CompositeBinding {
    origin: wgpu::Buffer,
    group: wgpu::BindGroup,
}

impl CompositePipeline {
    pub fn new(device: &wgpu::Device, target: wgpu::TextureFormat) -> Self {
        let fs = wgpu::ShaderStages::FRAGMENT;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("composite"),
            entries: &[uniform(fs), texture(1, false)],
        });
        let pipeline = render_pipeline(
            device,
            target,
            &Draw {
                label: "composite",
                source: include_str!("../../../shaders/composite.wgsl"),
                layout: &layout,
                vertex: "vs_composite",
                fragment: "fs_composite",
                topology: wgpu::PrimitiveTopology::TriangleList,
                depth: Depth::None,
                blend: Some(OVER),
            },
        );
        Self { pipeline, layout }
    }

    /// Bind `view` (made with TEXTURE_BINDING) for compositing.
    pub fn bind(&self, device: &wgpu::Device, view: &ViewTarget) -> CompositeBinding {
        let origin = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("composite-origin"),
            contents: &[0u8; 16],
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("composite"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: origin.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&view.color_view),
                },
            ],
        });
        CompositeBinding { origin, group }
    }

    /// Where the view's top-left lands in the frame, in framebuffer pixels.
    pub fn set_origin(&self, queue: &wgpu::Queue, binding: &CompositeBinding, origin: [f32; 2]) {
        let o = [origin[0], origin[1], 0.0, 0.0];
        queue.write_buffer(&binding.origin, 0, bytemuck::cast_slice(&o));
    }

    /// Record the copy into an open pass whose viewport is the view's rectangle.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, binding: &CompositeBinding) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &binding.group, &[]);
        pass.draw(0..3, 0..1);
    }
}
