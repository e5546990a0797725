//! What the render pipelines here share: bind-group entries and the one pipeline shape
//! every draw uses (no vertex buffers, one colour target, an optional depth test).

use super::lines::DEPTH_FORMAT;

pub(crate) fn storage(
    binding: u32,
    visibility: wgpu::ShaderStages,
    read_only: bool,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// The uniform buffer at binding 0.
pub(crate) fn uniform(visibility: wgpu::ShaderStages) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A 2-D float texture read by the fragment stage.
pub(crate) fn texture(binding: u32, filterable: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

/// Premultiplied "over".
pub(crate) const OVER: wgpu::BlendState = wgpu::BlendState {
    color: wgpu::BlendComponent {
        src_factor: wgpu::BlendFactor::One,
        dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
        operation: wgpu::BlendOperation::Add,
    },
    alpha: wgpu::BlendComponent {
        src_factor: wgpu::BlendFactor::One,
        dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
        operation: wgpu::BlendOperation::Add,
    },
};

/// How a draw uses the view's depth buffer.
#[derive(Clone, Copy)]
pub(crate) enum Depth {
    /// No depth attachment (drawing into egui's frame).
    None,
    /// Tested, not written (the blended splats).
    Test,
    /// Tested and written (opaque overlays).
    Write,
}

pub(crate) struct Draw<'a> {
    pub label: &'a str,
    /// WGSL with both entry points.
    pub source: &'a str,
    pub layout: &'a wgpu::BindGroupLayout,
    pub vertex: &'a str,
    pub fragment: &'a str,
    pub topology: wgpu::PrimitiveTopology,
    pub depth: Depth,
    pub blend: Option<wgpu::BlendState>,
}

pub(crate) fn render_pipeline(
    device: &wgpu::Device,
    target: wgpu::TextureFormat,
    d: &Draw<'_>,
) -> wgpu::RenderPipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(d.label),
        source: wgpu::ShaderSource::Wgsl(d.source.into()),
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(d.label),
        bind_group_layouts: &[Some(d.layout)],
        immediate_size: 0,
    });
    let depth = |write: bool| wgpu::DepthStencilState {
        format: DEPTH_FORMAT,
        depth_write_enabled: Some(write),
        depth_compare: Some(wgpu::CompareFunction::LessEqual),
        stencil: Default::default(),
        bias: Default::default(),
    };
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(d.label),
        layout: Some(&layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some(d.vertex),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState {
            topology: d.topology,
            ..Default::default()
        },
        depth_stencil: match d.depth {
            Depth::None => None,
            Depth::Test => Some(depth(false)),
            Depth::Write => Some(depth(true)),
        },
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some(d.fragment),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format: target,
                blend: d.blend,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    })
}
