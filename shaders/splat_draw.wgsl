// Gaussian splats, drawing: one instanced quad per splat spanning its 3σ radius, in
// the back-to-front order sorted on the CPU, with premultiplied alpha, depth-tested
// against the overlay lines drawn before them. Types come from
// splat_common.wgsl.

@group(0) @binding(0) var<uniform> dg: Globals;
@group(0) @binding(1) var<storage, read> draw_projected: array<Projected>;
@group(0) @binding(2) var<storage, read> order: array<u32>;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) @interpolate(flat) center: vec2<f32>,
    @location(1) @interpolate(flat) conic_opacity: vec4<f32>,
    @location(2) @interpolate(flat) color: vec3<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) vid: u32, @builtin(instance_index) iid: u32) -> VsOut {
    let p = draw_projected[order[iid]];
    var out: VsOut;
    let radius = p.center_radius.z;
    if radius <= 0.0 {
        out.position = vec4<f32>(2.0, 2.0, 2.0, 1.0); // outside the clip volume
        return out;
    }
    let corner = vec2<f32>(f32(vid & 1u), f32(vid >> 1u)) * 2.0 - 1.0;
    let px = p.center_radius.xy + corner * radius;
    let size = dg.viewport.xy;
    // Depth of the splat's centre as 1 - near/z, the overlay lines' convention: the
    // whole splat is in front of or behind a line (tested, not written: splats are
    // blended in sorted order).
    let depth = 1.0 - dg.viewport.z / p.center_radius.w;
    out.position = vec4<f32>(2.0 * px.x / size.x - 1.0, 1.0 - 2.0 * px.y / size.y, depth, 1.0);
    // Fragment positions are framebuffer pixels; the viewport may not start at 0 (egui).
    out.center = p.center_radius.xy + dg.origin.xy;
    out.conic_opacity = p.conic_opacity;
    out.color = p.color.rgb;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    let d = in.position.xy - in.center;
    let c = in.conic_opacity;
    let power = -0.5 * (c.x * d.x * d.x + c.z * d.y * d.y) - c.y * d.x * d.y;
    if power > 0.0 { discard; }
    let alpha = min(0.99, c.w * exp(power));
    if alpha < 1.0 / 255.0 { discard; }
    return vec4<f32>(in.color * alpha, alpha);
}
