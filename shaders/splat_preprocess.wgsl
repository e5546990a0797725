// Gaussian splats, projection: a compute pass projects every splat (EWA with the 0.3 px low-pass,
// SH colour), then instanced quads are drawn back to front in the order sorted on the
// CPU, blended with premultiplied alpha. Pixel centres are at integer + 0.5, the same
// convention as the CPU reference renderer.

@group(0) @binding(0) var<uniform> g: Globals;
@group(0) @binding(1) var<storage, read> splats: array<u32>;     // 8 words per splat
@group(0) @binding(2) var<storage, read> sh: array<u32>;         // f16 pairs
@group(0) @binding(3) var<storage, read_write> projected: array<Projected>;

const SH_C0: f32 = 0.28209479177387814;
const SH_C1: f32 = 0.4886025119029199;

fn sh_coeff(base: u32, k: u32) -> vec3<f32> {
    // Coefficient k's RGB are halves 3k, 3k+1, 3k+2 of the splat's run.
    let h0 = 3u * k;
    var out: vec3<f32>;
    for (var c = 0u; c < 3u; c++) {
        let h = h0 + c;
        let pair = unpack2x16float(sh[base + h / 2u]);
        out[c] = select(pair.x, pair.y, (h & 1u) == 1u);
    }
    return out;
}

fn sh_color(base: u32, degree: u32, d: vec3<f32>) -> vec3<f32> {
    var rgb = SH_C0 * sh_coeff(base, 0u);
    let x = d.x; let y = d.y; let z = d.z;
    if degree > 0u {
        rgb += -SH_C1 * y * sh_coeff(base, 1u) + SH_C1 * z * sh_coeff(base, 2u) - SH_C1 * x * sh_coeff(base, 3u);
    }
    if degree > 1u {
        let xx = x * x; let yy = y * y; let zz = z * z;
        let xy = x * y; let yz = y * z; let xz = x * z;
        rgb += 1.0925484305920792 * xy * sh_coeff(base, 4u)
            - 1.0925484305920792 * yz * sh_coeff(base, 5u)
            + 0.31539156525252005 * (2.0 * zz - xx - yy) * sh_coeff(base, 6u)
            - 1.0925484305920792 * xz * sh_coeff(base, 7u)
            + 0.5462742152960396 * (xx - yy) * sh_coeff(base, 8u);
        if degree > 2u {
            rgb += -0.5900435899266435 * y * (3.0 * xx - yy) * sh_coeff(base, 9u)
                + 2.890611442640554 * xy * z * sh_coeff(base, 10u)
                - 0.4570457994644658 * y * (4.0 * zz - xx - yy) * sh_coeff(base, 11u)
                + 0.3731763325901154 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * sh_coeff(base, 12u)
                - 0.4570457994644658 * x * (4.0 * zz - xx - yy) * sh_coeff(base, 13u)
                + 1.445305721320277 * z * (xx - yy) * sh_coeff(base, 14u)
                - 0.5900435899266435 * x * (xx - 3.0 * yy) * sh_coeff(base, 15u);
        }
    }
    return max(rgb + 0.5, vec3<f32>(0.0));
}

fn culled() -> Projected {
    var p: Projected;
    p.center_radius = vec4<f32>(0.0);
    p.conic_opacity = vec4<f32>(0.0);
    p.color = vec4<f32>(0.0);
    return p;
}

@compute @workgroup_size(256)
fn preprocess(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    // 2-D dispatch so more than 65 535 workgroups fit.
    let i = gid.x + gid.y * groups.x * 256u;
    if i >= g.counts.x { return; }
    let w = i * 8u;
    let mean = vec3<f32>(bitcast<f32>(splats[w]), bitcast<f32>(splats[w + 1u]), bitcast<f32>(splats[w + 2u]));
    let a = unpack2x16float(splats[w + 3u]);   // opacity, log scale x
    let b = unpack2x16float(splats[w + 4u]);   // log scale y, log scale z
    let q0 = unpack2x16float(splats[w + 5u]);  // w, x
    let q1 = unpack2x16float(splats[w + 6u]);  // y, z
    let flags = splats[w + 7u];
    let opacity = a.x;
    if opacity < g.limits.z || (g.counts.w == 1u && (flags & 1u) == 0u) {
        projected[i] = culled();
        return;
    }
    let t = (g.view * vec4<f32>(mean, 1.0)).xyz;
    if t.z <= g.viewport.z {
        projected[i] = culled();
        return;
    }
    let s = exp(vec3<f32>(a.y, b.x, b.y)) * g.viewport.w;
    let q = normalize(vec4<f32>(q0.x, q0.y, q1.x, q1.y));
    let r = q.x; let x = q.y; let y = q.z; let z = q.w;
    // Rotation matrix of (w, x, y, z); WGSL matrices are column-major.
    let rot = mat3x3<f32>(
        vec3<f32>(1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y + r * z), 2.0 * (x * z - r * y)),
        vec3<f32>(2.0 * (x * y - r * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z + r * x)),
        vec3<f32>(2.0 * (x * z + r * y), 2.0 * (y * z - r * x), 1.0 - 2.0 * (x * x + y * y)),
    );
    let m = rot * mat3x3<f32>(vec3<f32>(s.x, 0.0, 0.0), vec3<f32>(0.0, s.y, 0.0), vec3<f32>(0.0, 0.0, s.z));
    let sigma = m * transpose(m);

    let fx = g.focal.x; let fy = g.focal.y;
    let tx = clamp(t.x / t.z, -g.limits.x, g.limits.x) * t.z;
    let ty = clamp(t.y / t.z, -g.limits.y, g.limits.y) * t.z;
    let j = mat3x3<f32>(
        vec3<f32>(fx / t.z, 0.0, 0.0),
        vec3<f32>(0.0, fy / t.z, 0.0),
        vec3<f32>(-fx * tx / (t.z * t.z), -fy * ty / (t.z * t.z), 0.0),
    );
    let wrot = mat3x3<f32>(g.view[0].xyz, g.view[1].xyz, g.view[2].xyz);
    let jw = j * wrot;
    let cov = jw * sigma * transpose(jw);
    var ca = cov[0][0] + 0.3;
    var cb = cov[0][1];
    var cc = cov[1][1] + 0.3;
    var alpha = opacity;
    // Point display (limits.w = dot sigma in pixels): a round opaque dot per splat.
    if g.limits.w > 0.0 {
        ca = g.limits.w * g.limits.w;
        cb = 0.0;
        cc = ca;
        alpha = 1.0;
    }
    let det = ca * cc - cb * cb;
    if det <= 0.0 {
        projected[i] = culled();
        return;
    }
    let mid = 0.5 * (ca + cc);
    let lambda = mid + sqrt(max(0.1, mid * mid - det));
    let radius = ceil(3.0 * sqrt(lambda));
    let center = vec2<f32>(fx * t.x / t.z + g.focal.z, fy * t.y / t.z + g.focal.w);
    let dir = normalize(mean - g.cam_pos.xyz);
    var p: Projected;
    p.center_radius = vec4<f32>(center, radius, t.z);
    p.conic_opacity = vec4<f32>(cc / det, -cb / det, ca / det, alpha);
    p.color = vec4<f32>(sh_color(i * g.counts.z, g.counts.y, dir), 1.0);
    projected[i] = p;
}

