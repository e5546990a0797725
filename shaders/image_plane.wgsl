// A picture on a 3-D quad (a video frame inside its camera frustum), drawn with the
// overlay lines before the splats: opaque (its opacity mixes it with the background
// colour first, like the lines) and writing depth, so splats in front of it blend over
// it and splats behind it are hidden. Corners arrive in clip space with w = camera z,
// so the texture is interpolated perspective-correctly and depth is 1 - near/z.

struct PlaneGlobals {
    corners: array<vec4<f32>, 4>,   // top-left, top-right, bottom-left, bottom-right (clip)
    background: vec4<f32>,          // rgb, opacity of the picture
};

@group(0) @binding(0) var<uniform> pg: PlaneGlobals;
@group(0) @binding(1) var picture: texture_2d<f32>;
@group(0) @binding(2) var picture_sampler: sampler;

struct PlaneOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_plane(@builtin(vertex_index) vid: u32) -> PlaneOut {
    var out: PlaneOut;
    out.position = pg.corners[vid];
    out.uv = vec2<f32>(f32(vid & 1u), f32(vid >> 1u));
    return out;
}

@fragment
fn fs_plane(in: PlaneOut) -> @location(0) vec4<f32> {
    let c = textureSample(picture, picture_sampler, in.uv);
    let o = pg.background.w * c.a;
    return vec4<f32>(c.rgb * o + pg.background.rgb * (1.0 - o), 1.0);
}
