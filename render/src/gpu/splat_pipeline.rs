//! The wgpu splat renderer: a compute pass projects splats, the CPU sorts them by
//! depth (see `sort_back_to_front`), and instanced quads are blended back to front.
//!
//! GPU layout per splat: mean 3×f32, then f16 pairs (opacity, log σx), (log σy, log σz),
//! (qw, qx), (qy, qz), then a flags word = 32 bytes; SH as f16, `3·(d+1)²` halves rounded
//! up to whole words: 8 bytes at degree 0, 96 at degree 3. Log-scales rather than a
//! covariance keep tiny splats exact: their covariance would underflow f16.

use super::pipeline::{Depth, Draw, OVER, render_pipeline, storage, uniform};
use crate::camera::Camera;
use crate::reference::RenderSettings;
use crate::splats::Splats;
use half::f16;
use wgpu::util::DeviceExt as _;

const WORDS_PER_SPLAT: usize = 8;
const PROJECTED_BYTES: u64 = 48;

/// Bytes of GPU memory per splat at an SH degree (persistent data, excluding the
/// per-frame projected record and sort order).
pub fn bytes_per_splat(sh_degree: u32) -> usize {
    WORDS_PER_SPLAT * 4 + sh_words(sh_degree) * 4
}

fn sh_words(sh_degree: u32) -> usize {
    (crate::splats::sh_coeffs(sh_degree) * 3).div_ceil(2)
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Globals {
    view: [f32; 16],
    cam_pos: [f32; 4],
    focal: [f32; 4],
    viewport: [f32; 4],
    limits: [f32; 4],
    counts: [u32; 4],
    origin: [f32; 4],
}

/// Pipelines and layouts, made once per device and target format.
pub struct SplatPipeline {
    preprocess: wgpu::ComputePipeline,
    draw: wgpu::RenderPipeline,
    pre_layout: wgpu::BindGroupLayout,
    draw_layout: wgpu::BindGroupLayout,
}

impl SplatPipeline {
    pub fn new(device: &wgpu::Device, target: wgpu::TextureFormat) -> Self {
        let cs = wgpu::ShaderStages::COMPUTE;
        let vs = wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT;
        let pre_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("splat-preprocess"),
            entries: &[
                uniform(cs),
                storage(1, cs, true),
                storage(2, cs, true),
                storage(3, cs, false),
            ],
        });
        let draw_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("splat-draw"),
            entries: &[
                uniform(vs),
                storage(1, wgpu::ShaderStages::VERTEX, true),
                storage(2, wgpu::ShaderStages::VERTEX, true),
            ],
        });
        let pre_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("splat_preprocess.wgsl"),
            source: wgpu::ShaderSource::Wgsl(
                concat!(
                    include_str!("../../../shaders/splat_common.wgsl"),
                    include_str!("../../../shaders/splat_preprocess.wgsl")
                )
                .into(),
            ),
        });
        let pre_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("splat-preprocess"),
            bind_group_layouts: &[Some(&pre_layout)],
            immediate_size: 0,
        });
        let preprocess = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("splat-preprocess"),
            layout: Some(&pre_pl),
            module: &pre_module,
            entry_point: Some("preprocess"),
            compilation_options: Default::default(),
            cache: None,
        });
        // Premultiplied "over", drawn far to near; tested against the overlays' depth,
        // never written (see splat_draw.wgsl).
        let draw = render_pipeline(
            device,
            target,
            &Draw {
                label: "splat-draw",
                source: concat!(
                    include_str!("../../../shaders/splat_common.wgsl"),
                    include_str!("../../../shaders/splat_draw.wgsl")
                ),
                layout: &draw_layout,
                vertex: "vs_main",
                fragment: "fs_main",
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                depth: Depth::Test,
                blend: Some(OVER),
            },
        );
        Self {
            preprocess,
            draw,
            pre_layout,
            draw_layout,
        }
    }
}

/// Splats uploaded to the GPU, plus the CPU copy of their means for depth sorting.
pub struct GpuSplats {
    count: u32,
    sh_degree: u32,
    means: Vec<[f32; 3]>,
    globals: wgpu::Buffer,
    order: wgpu::Buffer,
    pre_group: wgpu::BindGroup,
    draw_group: wgpu::BindGroup,
    /// Splats in the current order (those in front of the camera).
    visible: u32,
}

/// Pack splats into the GPU layout described at the top of this file.
pub fn pack(splats: &Splats) -> (Vec<u32>, Vec<u32>) {
    let pair = |a: f32, b: f32| {
        u32::from(f16::from_f32(a).to_bits()) | (u32::from(f16::from_f32(b).to_bits()) << 16)
    };
    let mut words = Vec::with_capacity(splats.len() * WORDS_PER_SPLAT);
    let sh_w = sh_words(splats.sh_degree);
    let mut sh = Vec::with_capacity(splats.len() * sh_w);
    for i in 0..splats.len() {
        let m = splats.means[i];
        let s = splats.scales[i].map(|v| v.max(1e-30).ln());
        let q = splats.rotations[i];
        let fg = splats.foreground.as_ref().is_none_or(|f| f[i]);
        words.extend([m[0].to_bits(), m[1].to_bits(), m[2].to_bits()]);
        words.extend([
            pair(splats.opacities[i], s[0]),
            pair(s[1], s[2]),
            pair(q[0], q[1]),
            pair(q[2], q[3]),
            u32::from(fg),
        ]);
        let coeffs = splats.sh_of(i);
        for w in 0..sh_w {
            let a = coeffs.get(2 * w).copied().unwrap_or(0.0);
            let b = coeffs.get(2 * w + 1).copied().unwrap_or(0.0);
            sh.push(pair(a, b));
        }
    }
    (words, sh)
}

/// Indices of the splats in front of the camera, farthest first.
pub fn sort_back_to_front(means: &[[f32; 3]], camera: &Camera) -> Vec<u32> {
    use rayon::prelude::*;
    let m = camera.world_to_camera.to_homogeneous().cast::<f32>();
    let (r0, r1, r2, t) = (m[(2, 0)], m[(2, 1)], m[(2, 2)], m[(2, 3)]);
    let near = camera.near as f32;
    // Sort (depth, index) pairs rather than indices keyed by a depth lookup: the
    // radix passes then stream through memory instead of gathering at random.
    let mut keyed: Vec<(f32, u32)> = means
        .par_iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let z = r0 * p[0] + r1 * p[1] + r2 * p[2] + t;
            (z > near).then_some((-z, i as u32))
        })
        .collect();
    radsort::sort_by_key(&mut keyed, |k| k.0);
    keyed.into_iter().map(|k| k.1).collect()
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

impl GpuSplats {
    pub fn upload(device: &wgpu::Device, pipeline: &SplatPipeline, splats: &Splats) -> Self {
        let (words, sh) = pack(splats);
        let n = splats.len().max(1);
        let init = |label: &str, data: &[u8], usage: wgpu::BufferUsages| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: data,
                usage,
            })
        };
        // Empty buffers are not allowed: pad to at least one element.
        let pad = |mut v: Vec<u32>, min: usize| {
            v.resize(v.len().max(min), 0);
            v
        };
        let splat_buf = init(
            "splats",
            bytemuck::cast_slice(&pad(words, WORDS_PER_SPLAT)),
            wgpu::BufferUsages::STORAGE,
        );
        let sh_buf = init(
            "splat-sh",
            bytemuck::cast_slice(&pad(sh, 1)),
            wgpu::BufferUsages::STORAGE,
        );
        let projected = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("splat-projected"),
            size: PROJECTED_BYTES * n as u64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let order = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("splat-order"),
            size: 4 * n as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let globals = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("splat-globals"),
            size: size_of::<Globals>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let pre_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("splat-preprocess"),
            layout: &pipeline.pre_layout,
            entries: &[
                entry(0, &globals),
                entry(1, &splat_buf),
                entry(2, &sh_buf),
                entry(3, &projected),
            ],
        });
        let draw_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("splat-draw"),
            layout: &pipeline.draw_layout,
            entries: &[entry(0, &globals), entry(1, &projected), entry(2, &order)],
        });
        Self {
            count: splats.len() as u32,
            sh_degree: splats.sh_degree,
            means: splats.means.clone(),
            globals,
            order,
            pre_group,
            draw_group,
            visible: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn means(&self) -> &[[f32; 3]] {
        &self.means
    }

    /// Write this frame's camera and settings. `origin_px` is where the viewport starts
    /// in the render target (non-zero when drawing into part of egui's frame).
    pub fn set_view(
        &self,
        queue: &wgpu::Queue,
        camera: &Camera,
        settings: &RenderSettings,
        origin_px: [f32; 2],
    ) {
        let k = &camera.intrinsics;
        let view = camera.world_to_camera.to_homogeneous().cast::<f32>();
        let c = camera.centre();
        let g = Globals {
            view: view.as_slice().try_into().unwrap_or([0.0; 16]),
            cam_pos: [c.x as f32, c.y as f32, c.z as f32, 1.0],
            focal: [k.fx as f32, k.fy as f32, k.cx as f32, k.cy as f32],
            viewport: [
                k.width as f32,
                k.height as f32,
                camera.near as f32,
                settings.scale_modifier,
            ],
            limits: [
                (1.3 * 0.5 * f64::from(k.width) / k.fx) as f32,
                (1.3 * 0.5 * f64::from(k.height) / k.fy) as f32,
                settings.min_opacity,
                settings.point_size,
            ],
            counts: [
                self.count,
                settings.sh_degree.min(self.sh_degree),
                sh_words(self.sh_degree) as u32,
                u32::from(settings.foreground_only),
            ],
            origin: [origin_px[0], origin_px[1], 0.0, 0.0],
        };
        queue.write_buffer(&self.globals, 0, bytemuck::bytes_of(&g));
    }

    /// Upload a back-to-front order (from [`sort_back_to_front`], possibly computed
    /// on another thread for an earlier camera).
    pub fn set_order(&mut self, queue: &wgpu::Queue, order: &[u32]) {
        let n = order.len().min(self.count as usize);
        if n > 0 {
            queue.write_buffer(&self.order, 0, bytemuck::cast_slice(&order[..n]));
        }
        self.visible = n as u32;
    }

    /// Record the projection pass.
    pub fn preprocess(&self, encoder: &mut wgpu::CommandEncoder, pipeline: &SplatPipeline) {
        if self.count == 0 {
            return;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("splat-preprocess"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline.preprocess);
        pass.set_bind_group(0, &self.pre_group, &[]);
        let groups = self.count.div_ceil(256);
        // Stay under the 65 535 per-dimension limit by folding into y.
        let (x, y) = if groups > 65_535 {
            (65_535, groups.div_ceil(65_535))
        } else {
            (groups, 1)
        };
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Record the draw into an open render pass.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, pipeline: &SplatPipeline) {
        if self.visible == 0 {
            return;
        }
        pass.set_pipeline(&pipeline.draw);
        pass.set_bind_group(0, &self.draw_group, &[]);
        pass.draw(0..4, 0..self.visible);
    }
}
