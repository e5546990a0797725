// Copies the 3-D view's own colour target (premultiplied) into egui's frame, blended
// "over" what egui drew beneath it. One triangle covers the viewport egui set for the
// paint callback; texels are fetched 1:1 by framebuffer pixel minus the view's origin.

struct CompositeGlobals {
    origin: vec4<f32>,          // the view's top-left in framebuffer pixels (x, y)
};

@group(0) @binding(0) var<uniform> cg: CompositeGlobals;
@group(0) @binding(1) var view_color: texture_2d<f32>;

@vertex
fn vs_composite(@builtin(vertex_index) vid: u32) -> @builtin(position) vec4<f32> {
    let uv = vec2<f32>(f32((vid << 1u) & 2u), f32(vid & 2u));
    return vec4<f32>(uv * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs_composite(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let size = vec2<i32>(textureDimensions(view_color));
    let p = clamp(vec2<i32>(floor(pos.xy - cg.origin.xy)), vec2<i32>(0), size - 1);
    return textureLoad(view_color, p, 0);
}
