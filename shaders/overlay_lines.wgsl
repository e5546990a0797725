// Overlay lines (frusta, axes, grid, boxes), drawn before the splats into the same
// colour + depth target so the splats composite with them by depth. Each line arrives
// already projected and clipped to the near plane on the CPU (a few thousand at most):
// end points in pixels and their depth as 1 - near/z, which is affine in 1/z and so
// interpolates exactly across the screen-space quad. Square caps, no antialiasing
// (the lines are opaque: they write depth).

struct LineGlobals {
    viewport: vec4<f32>,        // width, height (pixels), unused, unused
};

struct Line {
    a: vec4<f32>,               // u, v (pixels), depth, half width (pixels)
    b: vec4<f32>,               // u, v (pixels), depth, unused
    color: vec4<f32>,           // premultiplied, alpha 1
};

@group(0) @binding(0) var<uniform> lg: LineGlobals;
@group(0) @binding(1) var<storage, read> lines: array<Line>;

struct LineOut {
    @builtin(position) position: vec4<f32>,
    @location(0) @interpolate(flat) color: vec4<f32>,
};

@vertex
fn vs_line(@builtin(vertex_index) vid: u32, @builtin(instance_index) iid: u32) -> LineOut {
    let l = lines[iid];
    let along = f32(vid & 1u);          // 0 at a, 1 at b
    let side = f32(vid >> 1u) * 2.0 - 1.0;
    let d = l.b.xy - l.a.xy;
    let len = length(d);
    var dir = vec2<f32>(1.0, 0.0);
    if len > 1e-6 { dir = d / len; }
    let normal = vec2<f32>(-dir.y, dir.x);
    let hw = l.a.w;
    let end = mix(l.a, l.b, along);
    let px = end.xy + normal * side * hw + dir * (along * 2.0 - 1.0) * hw;
    var out: LineOut;
    let size = lg.viewport.xy;
    out.position = vec4<f32>(2.0 * px.x / size.x - 1.0, 1.0 - 2.0 * px.y / size.y, end.z, 1.0);
    out.color = l.color;
    return out;
}

@fragment
fn fs_line(in: LineOut) -> @location(0) vec4<f32> {
    return in.color;
}
