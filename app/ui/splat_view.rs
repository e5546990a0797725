//! Splats inside egui: a paint callback (egui's `custom3d_wgpu` pattern) that uploads
//! the scene once, writes the camera each frame, takes the newest background sort, and
//! draws into egui's render pass.

use loupe_render::camera::Camera;
use loupe_render::gpu::sorter::SortResult;
use loupe_render::gpu::{GpuSplats, SplatPipeline};
use loupe_render::reference::RenderSettings;
use loupe_render::splats::Splats;
use std::sync::Arc;

/// GPU state kept in egui-wgpu's callback resources.
pub struct SplatResources {
    pipeline: SplatPipeline,
    scene: Option<(u64, GpuSplats)>,
    order_generation: u64,
}

/// Register the pipeline with egui's renderer; call once at start-up.
pub fn install(render_state: &egui_wgpu::RenderState) {
    let pipeline = SplatPipeline::new(&render_state.device, render_state.target_format);
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(SplatResources {
            pipeline,
            scene: None,
            order_generation: 0,
        });
}

pub struct SplatPaint {
    pub scene_id: u64,
    pub splats: Arc<Splats>,
    pub camera: Camera,
    pub settings: RenderSettings,
    pub order: Option<SortResult>,
    /// Top-left of the view in physical pixels of the window.
    pub origin_px: [f32; 2],
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
        let Some((_, gpu)) = res.scene.as_mut() else {
            return Vec::new();
        };
        gpu.set_view(queue, &self.camera, &self.settings, self.origin_px);
        if let Some(order) = &self.order
            && order.generation != res.order_generation
        {
            gpu.set_order(queue, &order.order);
            res.order_generation = order.generation;
        }
        gpu.preprocess(encoder, &res.pipeline);
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(SplatResources {
            pipeline,
            scene: Some((_, gpu)),
            ..
        }) = resources.get::<SplatResources>()
        {
            gpu.draw(pass, pipeline);
        }
    }
}
