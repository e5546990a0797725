// Types shared by the splat shaders; prepended to each module by loupe-render.

struct Globals {
    view: mat4x4<f32>,          // world → camera (OpenCV: +x right, +y down, +z forward)
    cam_pos: vec4<f32>,         // camera centre in world space
    focal: vec4<f32>,           // fx, fy, cx, cy
    viewport: vec4<f32>,        // width, height, near, scale modifier
    limits: vec4<f32>,          // Jacobian clamp on x/z and y/z, min opacity, point sigma px (0: ellipsoids)
    counts: vec4<u32>,          // splat count, SH degree used, SH words per splat, foreground only
    origin: vec4<f32>,          // the viewport's top-left in framebuffer pixels (x, y), unused
};

struct Projected {
    center_radius: vec4<f32>,   // mean.x, mean.y (pixels), radius (pixels, 0 = culled), depth
    conic_opacity: vec4<f32>,   // inverse 2-D covariance (a, b, c), opacity
    color: vec4<f32>,
};
