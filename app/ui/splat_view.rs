//! Splats inside egui: a paint callback (egui's `custom3d_wgpu` pattern) that uploads
//! the scene once, writes the camera each frame, takes the newest background sort, draws
//! the overlay lines and the splats depth-composited into the view's own colour + depth
//! target (egui's frame has no depth buffer), and composites that into egui's pass.

use loupe_render::camera::Camera;
use loupe_render::gpu::sorter::SortResult;
use loupe_render::gpu::{
    CompositeBinding, CompositePipeline, GpuImagePlane, GpuLines, GpuSplats, ImagePlanePipeline,
    LineInstance, LinePipeline, SplatPipeline, ViewTarget,
};
use loupe_render::reference::RenderSettings;
use loupe_render::splats::Splats;
use std::sync::Arc;

/// GPU state kept in egui-wgpu's callback resources.
pub struct SplatResources {
    format: wgpu::TextureFormat,
    pipeline: SplatPipeline,
    line_pipeline: LinePipeline,
    composite: CompositePipeline,
    lines: GpuLines,
    plane_pipeline: ImagePlanePipeline,
    plane: GpuImagePlane,
    scene: Option<(u64, GpuSplats)>,
    target: Option<(ViewTarget, CompositeBinding)>,
    order_generation: u64,
}

/// Register the pipelines with egui's renderer; call once at start-up.
pub fn install(render_state: &egui_wgpu::RenderState) {
    let device = &render_state.device;
    let format = render_state.target_format;
    let line_pipeline = LinePipeline::new(device, format);
    let lines = GpuLines::new(device, &line_pipeline);
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(SplatResources {
            format,
            pipeline: SplatPipeline::new(device, format),
            composite: CompositePipeline::new(device, format),
            line_pipeline,
            lines,
            plane_pipeline: ImagePlanePipeline::new(device, format),
            plane: GpuImagePlane::new(device),
            scene: None,
            target: None,
            order_generation: 0,
        });
}

pub struct SplatPaint {
    pub scene_id: u64,
    pub splats: Arc<Splats>,
    pub camera: Camera,
    pub settings: RenderSettings,
    pub order: Option<SortResult>,
    /// Overlay lines for this camera (`loupe_render::gpu::project_lines`).
    pub lines: Vec<LineInstance>,
    /// A picture on a 3-D quad (the frame in its frustum), depth-composited too.
    pub picture: Option<Picture>,
    /// Top-left of the view in physical pixels of the window.
    pub origin_px: [f32; 2],
}

pub struct Picture {
    /// Changes exactly when the pixels do (they are uploaded again then).
    pub key: u64,
    pub image: Arc<image::RgbaImage>,
    /// Clip-space corners (`loupe_render::gpu::plane_clip_corners`); `None`: not drawn.
    pub corners: Option<[[f32; 4]; 4]>,
    pub opacity: f32,
}

impl egui_wgpu::CallbackTrait for SplatPaint {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(res) = resources.get_mut::<SplatResources>() else {
            return Vec::new();
        };
        if res
            .scene
            .as_ref()
            .is_none_or(|(id, _)| *id != self.scene_id)
        {
            res.scene = Some((
                self.scene_id,
                GpuSplats::upload(device, &res.pipeline, &self.splats),
            ));
            res.order_generation = 0;
        }
        let k = &self.camera.intrinsics;
        let size = [k.width, k.height];
        if res.target.as_ref().is_none_or(|(t, _)| t.size() != size) {
            let target = ViewTarget::new(
                device,
                res.format,
                size,
                wgpu::TextureUsages::TEXTURE_BINDING,
            );
            let binding = res.composite.bind(device, &target);
            res.target = Some((target, binding));
        }
        let (Some((_, gpu)), Some((target, binding))) = (res.scene.as_mut(), res.target.as_ref())
        else {
            return Vec::new();
        };
        // The view has its own target now, so the splats start at its pixel (0, 0).
        gpu.set_view(queue, &self.camera, &self.settings, [0.0, 0.0]);
        if let Some(order) = &self.order
            && order.generation != res.order_generation
        {
            gpu.set_order(queue, &order.order);
            res.order_generation = order.generation;
        }
        res.lines
            .set(device, queue, &res.line_pipeline, &self.lines, size);
        match &self.picture {
            Some(p) => {
                res.plane
                    .set_picture(device, queue, &res.plane_pipeline, p.key, &p.image);
                res.plane
                    .set_quad(queue, p.corners, self.settings.background, p.opacity);
            }
            None => res
                .plane
                .set_quad(queue, None, self.settings.background, 1.0),
        }
        res.composite.set_origin(queue, binding, self.origin_px);
        gpu.preprocess(encoder, &res.pipeline);
        {
            // Transparent: egui's background (drawn beneath) shows through, as before.
            let mut pass = target.begin_pass(encoder, wgpu::Color::TRANSPARENT);
            res.lines.draw(&mut pass, &res.line_pipeline);
            res.plane.draw(&mut pass, &res.plane_pipeline);
            gpu.draw(&mut pass, &res.pipeline);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(SplatResources {
            composite,
            target: Some((_, binding)),
            scene: Some(_),
            ..
        }) = resources.get::<SplatResources>()
        {
            composite.draw(pass, binding);
        }
    }
}
