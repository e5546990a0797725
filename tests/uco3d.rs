//! uCO3D reading against the fixture `scripts/fixtures/make_uco3d_fixture.py` wrote
//! (`assets/demo/uco3d/`): its `expected.json` and `_expected_*.png` come from numpy and
//! OpenCV (`cv2.projectPoints`, `getOptimalNewCameraMatrix`, `initUndistortRectifyMap`,
//! `VideoCapture` seeks), not from Loupe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe::datasets::uco3d::camera::{Distortion, NdcCamera, Undistorter, optimal_new_intrinsics};
use loupe::datasets::uco3d::db::{SequenceQuery, SortBy};
use loupe::datasets::uco3d::depth::read_depth;
use loupe::datasets::uco3d::video::VideoReader;
use loupe::datasets::uco3d::{Dataset, find_root};
use loupe_render::reference::{self, RenderSettings, psnr};
use nalgebra::{Matrix3, Point3, Vector3};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const DISTORTED: &str = "1-10001-20001";
const PORTRAIT_HEVC: &str = "2-30002-40002";
const BROKEN: &str = "3-50003-60003";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/uco3d")
}

fn expected() -> &'static Value {
    static E: OnceLock<Value> = OnceLock::new();
    E.get_or_init(|| {
        serde_json::from_str(&std::fs::read_to_string(root().join("expected.json")).unwrap())
            .unwrap()
    })
}

fn seq(name: &str) -> &'static Value {
    &expected()["sequences"][name]
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn rgba(img: image::DynamicImage) -> image::RgbaImage {
    img.to_rgba8()
}

fn open() -> Dataset {
    Dataset::open(&root()).unwrap()
}

#[test]
fn root_is_found_from_any_path_inside() {
    let r = root();
    assert_eq!(find_root(&r).unwrap(), r);
    assert_eq!(find_root(&r.join("metadata.sqlite")).unwrap(), r);
    let inside = r
        .join("stationery/pen")
        .join(DISTORTED)
        .join("gaussian_splats");
    assert_eq!(find_root(&inside).unwrap(), r);
    assert!(
        find_root(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("assets")
                .as_path()
        )
        .is_none()
    );
}

#[test]
fn every_database_field_round_trips() {
    let ds = open();
    assert_eq!(ds.db.sequence_count().unwrap(), 3);
    let cats = ds.db.categories().unwrap();
    assert_eq!(
        cats,
        vec![
            ("home_décor".into(), "vase".into(), 1),
            ("stationery".into(), "pen".into(), 2),
        ]
    );
    let s = ds.db.sequence(DISTORTED).unwrap().unwrap();
    let rel = seq(DISTORTED)["path"].as_str().unwrap();
    assert_eq!(s.category, "pen");
    assert_eq!(s.super_category, "stationery");
    assert_eq!(
        s.video_path.as_deref(),
        Some(format!("{rel}/rgb_video.mp4").as_str())
    );
    assert_eq!(
        s.mask_video_path.as_deref(),
        Some(format!("{rel}/mask_video.mkv").as_str())
    );
    assert_eq!(
        s.depth_path.as_deref(),
        Some(format!("{rel}/depth_maps.h5").as_str())
    );
    assert_eq!(
        s.gaussian_splats_dir.as_deref(),
        Some(format!("{rel}/gaussian_splats").as_str())
    );
    assert_eq!(s.n_gaussians, Some(56 * 56));
    assert_eq!(s.video_length, Some(3.0));
    assert_eq!(s.quality.viewpoint, Some(0.91));
    assert_eq!(s.quality.gaussian_splats, Some(0.83));
    assert_eq!(s.quality.psnr, Some(31.5));
    assert_eq!(s.quality.sfm_n_registered_cameras, Some(12));
    assert!(
        s.caption
            .as_deref()
            .unwrap()
            .contains("10% more stripes & no text")
    );
    assert_eq!(
        s.short_caption.as_deref(),
        Some("Striped sphere on a table")
    );
    let a = s.alignment.unwrap();
    let e = &seq(DISTORTED)["alignment"];
    for (got, want) in a.r.transpose().iter().zip(floats(&e["R"])) {
        // Matrix iter is column-major; transposing walks the stored row-major order.
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
    assert!((a.scale - e["s"].as_f64().unwrap()).abs() < 1e-12);

    let (frames, problems) = ds.db.frames(DISTORTED).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let want = seq(DISTORTED)["frames"].as_array().unwrap();
    assert_eq!(frames.len(), want.len());
    for (f, w) in frames.iter().zip(want) {
        assert_eq!(f.frame_number, w["frame_number"].as_i64().unwrap());
        assert_eq!(f.timestamp, w["timestamp"].as_f64());
        assert_eq!(f.camera.image_hw, [144, 192]);
        assert!(
            (f.depth_scale_adjustment.unwrap() - w["depth_scale_adjustment"].as_f64().unwrap())
                .abs()
                < 1e-12
        );
        assert_eq!(
            f.intrinsics_format.as_deref(),
            Some("ndc_norm_image_bounds")
        );
        let d: Vec<f64> = f.camera.distortion.iter().map(|&v| f64::from(v)).collect();
        for (g, x) in d.iter().zip(floats(&seq(DISTORTED)["distortion"])) {
            assert!((g - x).abs() < 1e-7);
        }
    }
}

/// The NDC → OpenCV conversion reproduces the OpenCV cameras the maker built each frame
/// from (stored in the DB only in PyTorch3D form).
#[test]
fn cameras_convert_to_the_opencv_cameras_the_frames_were_made_with() {
    let ds = open();
    for name in [DISTORTED, PORTRAIT_HEVC] {
        let (frames, _) = ds.db.frames(name).unwrap();
        for (f, w) in frames.iter().zip(seq(name)["frames"].as_array().unwrap()) {
            let cv = f.camera.to_opencv();
            let r = floats(&w["raw"]["R"]);
            let t = floats(&w["raw"]["t"]);
            let k = floats(&w["raw"]["k"]);
            for (i, want) in r.iter().enumerate() {
                assert!(
                    (cv.rotation[(i / 3, i % 3)] - want).abs() < 1e-6,
                    "{name} R"
                );
            }
            for (got, want) in cv.translation.iter().zip(&t) {
                assert!((got - want).abs() < 1e-5, "{name} t");
            }
            let got_k = [cv.k.fx, cv.k.fy, cv.k.cx, cv.k.cy];
            for (g, x) in got_k.iter().zip(&k) {
                assert!((g - x).abs() < 1e-4, "{name} K {got_k:?} vs {k:?}");
            }
        }
    }
}

/// The loader's alignment applied to the cameras gives the canonical cameras the maker
/// started from (object at the origin, +Y up).
#[test]
fn aligned_cameras_are_the_canonical_ones() {
    let ds = open();
    let s = ds.db.sequence(DISTORTED).unwrap().unwrap();
    let a = s.alignment.unwrap();
    let (frames, _) = ds.db.frames(DISTORTED).unwrap();
    for (f, w) in frames
        .iter()
        .zip(seq(DISTORTED)["frames"].as_array().unwrap())
    {
        let aligned = a.ndc_camera(&f.camera).to_opencv();
        let r = Matrix3::from_row_slice(&floats(&w["canonical"]["R"]));
        let t = Vector3::from_row_slice(&floats(&w["canonical"]["t"]));
        assert!(
            (aligned.rotation - r).abs().max() < 1e-5,
            "{}",
            aligned.rotation - r
        );
        assert!(
            (aligned.translation - t).abs().max() < 1e-4,
            "{} vs {}",
            aligned.translation,
            t
        );
        // The canonical frame's origin (the object's centre) is straight ahead.
        let centre = a.inverse_point(&Point3::origin());
        let px = f.camera.to_opencv().pinhole().project(&centre).unwrap();
        assert!(
            (px.0 - 96.0).abs() < 12.0 && (px.1 - 72.0).abs() < 12.0,
            "{px:?}"
        );
    }
}

#[test]
fn points_project_within_half_a_pixel_of_opencv() {
    let ds = open();
    for name in [DISTORTED, PORTRAIT_HEVC] {
        let (frames, _) = ds.db.frames(name).unwrap();
        for (f, w) in frames.iter().zip(seq(name)["frames"].as_array().unwrap()) {
            let cv = f.camera.to_opencv();
            let pts = w["points_raw"].as_array().unwrap();
            let px = w["points_px"].as_array().unwrap();
            for (p, e) in pts.iter().zip(px) {
                let p = floats(p);
                let e = floats(e);
                let got = cv.project(&Point3::new(p[0], p[1], p[2])).unwrap();
                let err = ((got[0] - e[0]).powi(2) + (got[1] - e[1]).powi(2)).sqrt();
                assert!(err < 0.5, "{name}: {got:?} vs {e:?}");
                assert!(
                    err < 0.01,
                    "{name}: {err} px is more than float32 storage explains"
                );
            }
        }
    }
}

#[test]
fn optimal_new_camera_matches_opencv() {
    let ds = open();
    let (frames, _) = ds.db.frames(DISTORTED).unwrap();
    for (f, w) in frames
        .iter()
        .zip(seq(DISTORTED)["frames"].as_array().unwrap())
    {
        let cv = f.camera.to_opencv();
        let k = optimal_new_intrinsics(&cv.k, &cv.distortion);
        let e = floats(&w["new_k"]);
        for (g, x) in [k.fx, k.fy, k.cx, k.cy].iter().zip(&e) {
            assert!(
                (g - x).abs() < 0.02,
                "{:?} vs {e:?}",
                [k.fx, k.fy, k.cx, k.cy]
            );
        }
    }
}

/// Undistorting cv2's decoded frame with Loupe's map gives cv2's undistorted frame (cv2
/// interpolates with 5-bit fixed-point weights, hence a small tolerance).
#[test]
fn undistortion_matches_opencv_remap() {
    let ds = open();
    let (frames, _) = ds.db.frames(DISTORTED).unwrap();
    let cv = frames[0].camera.to_opencv();
    assert!(!cv.distortion.is_zero());
    let u = Undistorter::new(&cv.k, &cv.distortion);
    let raw =
        rgba(image::open(root().join(format!("_expected_{DISTORTED}_decoded000.png"))).unwrap());
    let want = rgba(
        image::open(root().join(format!("_expected_{DISTORTED}_undistorted000.png"))).unwrap(),
    );
    let got = u.apply(&raw);
    let p = psnr(&got, &want);
    eprintln!("undistortion PSNR {p:.2}");
    assert!(p > 42.0, "PSNR {p}");
    let worst = got
        .pixels()
        .zip(want.pixels())
        .flat_map(|(a, b)| (0..3).map(move |c| a.0[c].abs_diff(b.0[c])))
        .max()
        .unwrap();
    assert!(worst <= 1, "max diff {worst}");
    // And it really moved pixels: the raw frame is far from the undistorted one.
    assert!(psnr(&raw, &want) < p - 10.0);
    let _ = Distortion::default();
}

fn video(name: &str) -> PathBuf {
    root()
        .join(seq(name)["path"].as_str().unwrap())
        .join("rgb_video.mp4")
}

/// Random seeks return the same frame cv2's `CAP_PROP_POS_MSEC` seek returns: the one the
/// maker encoded at that timestamp, bit-identical to a sequential decode.
#[test]
fn frames_fetched_by_timestamp_are_the_encoded_ones() {
    for name in [DISTORTED, PORTRAIT_HEVC] {
        let e = seq(name);
        let fps = e["fps"].as_f64().unwrap();
        let mut sequential = VideoReader::open(&video(name)).unwrap();
        assert_eq!(sequential.codec, e["codec"].as_str().unwrap());
        let (w, h) = (
            e["width"].as_u64().unwrap() as u32,
            e["height"].as_u64().unwrap() as u32,
        );
        assert_eq!(sequential.size(), (w, h));
        let all: Vec<_> = (0..e["video_frames"].as_u64().unwrap())
            .map(|i| sequential.frame_at(i as f64 / fps).unwrap())
            .collect();
        for (i, f) in all.iter().enumerate() {
            assert!(
                (f.time - i as f64 / fps).abs() < 1e-6,
                "{name}: frame {i} at {}",
                f.time
            );
            assert_eq!(f.image.dimensions(), (w, h));
        }
        let mut random = VideoReader::open(&video(name)).unwrap();
        let mut frames: Vec<&Value> = e["frames"].as_array().unwrap().iter().collect();
        frames.reverse();
        frames.swap(1, 5);
        for f in frames {
            let t = f["timestamp"].as_f64().unwrap();
            let want = f["cv2_seek_frame"].as_u64().unwrap() as usize;
            assert_eq!(want, f["video_frame"].as_u64().unwrap() as usize);
            let got = random.frame_at(t).unwrap();
            assert!(
                got.image == all[want].image,
                "{name}: seek to {t} did not return frame {want}"
            );
        }
        // The maker's pre-compression frame 3 is the one decoded at 3/fps, not a neighbour.
        let exact =
            rgba(image::open(root().join(format!("_expected_{name}_frame003.png"))).unwrap());
        let here = psnr(&all[3].image, &exact);
        eprintln!(
            "{name}: decoded vs encoded {here:.2}, neighbours {:.2} {:.2}",
            psnr(&all[2].image, &exact),
            psnr(&all[4].image, &exact)
        );
        assert!(here > 35.0, "{name}: PSNR {here}");
        assert!(psnr(&all[2].image, &exact) < here - 8.0);
        assert!(psnr(&all[4].image, &exact) < here - 8.0);
    }
}

#[test]
fn a_missing_or_broken_video_is_a_clear_error() {
    let err = VideoReader::open(&root().join("stationery/pen/3-50003-60003/rgb_video.mp4"))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("rgb_video.mp4") && err.to_string().contains("does not exist"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.mp4");
    let bytes = std::fs::read(video(DISTORTED)).unwrap();
    std::fs::write(&bad, &bytes[..200]).unwrap();
    match VideoReader::open(&bad) {
        Err(e) => assert!(e.to_string().contains("truncated.mp4"), "{e}"),
        Ok(mut r) => {
            let e = r.frame_at(1.0).err().unwrap();
            assert!(e.to_string().contains("truncated.mp4"), "{e}");
        }
    }
}

fn render_cpu(splats: &loupe_render::Splats, cam: &loupe_render::Camera) -> image::RgbaImage {
    let settings = RenderSettings {
        background: [1.0; 3],
        ..Default::default()
    };
    let px = reference::render(splats, cam, &settings);
    reference::to_rgba8(&px, cam.intrinsics.width, cam.intrinsics.height)
}

/// Looking through a dataset camera: the splats rendered from it match the video frame.
#[test]
fn splat_renders_from_dataset_cameras_match_the_frames() {
    let ds = open();
    for name in [PORTRAIT_HEVC, DISTORTED] {
        let s = ds.load_sequence(name, &mut |_, _| {}).unwrap();
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let splats = s.splats.as_ref().unwrap();
        let mut reader =
            VideoReader::open(&ds.resolve(s.annot.video_path.as_deref().unwrap())).unwrap();
        for i in [1, 6] {
            let cv = &s.cameras[i];
            let frame = reader
                .frame_at(s.frames[i].timestamp.unwrap())
                .unwrap()
                .image;
            let (cam, frame) = if cv.distortion.is_zero() {
                (cv.pinhole(), frame)
            } else {
                let u = Undistorter::new(&cv.k, &cv.distortion);
                let mut cam = cv.pinhole();
                cam.intrinsics = u.new_k;
                (cam, std::sync::Arc::new(u.apply(&frame)))
            };
            let render = render_cpu(splats, &cam);
            let p = psnr(&render, &frame);
            eprintln!("{name} frame {i}: PSNR {p:.2}");
            assert!(p >= 30.0, "{name} frame {i}: PSNR {p}");
            // A neighbouring camera does much worse, so the test can fail.
            let mut other = cam;
            other.world_to_camera = s.cameras[i + 1].pinhole().world_to_camera;
            assert!(psnr(&render_cpu(splats, &other), &frame) < p - 5.0);
        }
    }
}

/// Depth × `_depth_scale_adjustment`, unprojected with the frame's camera and aligned,
/// lands on the unit sphere the maker placed at the canonical origin.
#[test]
fn depth_unprojects_onto_the_surface() {
    let ds = open();
    for name in [DISTORTED, PORTRAIT_HEVC] {
        let s = ds.load_sequence(name, &mut |_, _| {}).unwrap();
        let a = s.alignment();
        let path = ds.resolve(s.annot.depth_path.as_deref().unwrap());
        for i in [0, 5, 11] {
            let f = &s.frames[i];
            let d = read_depth(
                &path,
                f.frame_number,
                f.depth_scale_adjustment.unwrap() as f32,
            )
            .unwrap();
            assert_eq!(
                (d.width, d.height),
                (f.camera.width() / 2, f.camera.height() / 2)
            );
            assert!(d.values[0].is_nan(), "the maker's invalid corner");
            let cam = s.cameras[i].pinhole();
            let pts = d.unproject(&cam.intrinsics, &cam.world_to_camera, 1);
            assert!(pts.len() > 500, "{}", pts.len());
            for p in pts {
                let r = a.point(&p).coords.norm();
                assert!((r - 1.0).abs() < 1e-3, "{name} frame {i}: radius {r}");
            }
        }
        let err = read_depth(&path, 99, 1.0).err().unwrap();
        assert!(
            err.to_string().contains("frame 99") && err.to_string().contains("depth_maps.h5"),
            "{err}"
        );
    }
}

/// The mask video's foreground is where the depth (the sphere) is.
#[test]
fn mask_video_covers_the_object() {
    let ds = open();
    let s = ds.load_sequence(PORTRAIT_HEVC, &mut |_, _| {}).unwrap();
    let mut masks =
        VideoReader::open(&ds.resolve(s.annot.mask_video_path.as_deref().unwrap())).unwrap();
    let path = ds.resolve(s.annot.depth_path.as_deref().unwrap());
    let f = &s.frames[4];
    let mask = masks.frame_at(f.timestamp.unwrap()).unwrap().image;
    let d = read_depth(&path, f.frame_number, 1.0).unwrap();
    let (mut inter, mut union) = (0, 0);
    for y in 0..d.height {
        for x in 0..d.width {
            let fg = mask.get_pixel(2 * x, 2 * y).0[0] > 127;
            let v = d.values[(y * d.width + x) as usize];
            let surface = v.is_finite() && v > 0.0;
            inter += usize::from(fg && surface);
            union += usize::from(fg || surface);
        }
    }
    let iou = inter as f64 / union as f64;
    assert!(iou > 0.9, "IoU {iou}");
}

#[test]
fn broken_parts_are_reported_and_the_rest_loads() {
    let ds = open();
    let s = ds.load_sequence(BROKEN, &mut |_, _| {}).unwrap();
    assert_eq!(s.frames.len(), 1, "the good frame still loads");
    let all = s.problems.join("\n");
    assert!(
        all.contains("frame 1: _viewpoint_R: 32 bytes, expected 9 float32 values"),
        "{all}"
    );
    assert!(all.contains("no Gaussian splats"), "{all}");
    assert!(
        all.contains("rgb_video.mp4: the video does not exist"),
        "{all}"
    );
    assert!(
        all.contains("metadata.sqlite"),
        "errors name the file: {all}"
    );
    assert!(
        ds.load_sequence("no-such-sequence", &mut |_, _| {})
            .is_err()
    );
    // Not a uCO3D database: a clear error naming the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("metadata.sqlite"),
        b"not sqlite at all, just bytes",
    )
    .unwrap();
    let err = Dataset::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("metadata.sqlite"), "{err}");
}

#[test]
fn browser_queries_filter_sort_and_search() {
    let ds = open();
    let all = ds.db.query(&SequenceQuery::default()).unwrap();
    assert_eq!(
        all.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        [DISTORTED, PORTRAIT_HEVC, BROKEN]
    );
    let q = SequenceQuery {
        caption: "STRIPES &".into(),
        ..Default::default()
    };
    assert_eq!(ds.db.query(&q).unwrap().len(), 1);
    let q = SequenceQuery {
        super_category: Some("home_décor".into()),
        ..Default::default()
    };
    assert_eq!(ds.db.query(&q).unwrap()[0].name, PORTRAIT_HEVC);
    let q = SequenceQuery {
        sort: SortBy::SplatQualityDesc,
        ..Default::default()
    };
    let sorted: Vec<_> = ds
        .db
        .query(&q)
        .unwrap()
        .into_iter()
        .map(|r| r.splat_quality)
        .collect();
    assert_eq!(sorted, [Some(0.83), Some(0.71), None]);
    let q = SequenceQuery {
        min_camera_quality: Some(0.8),
        ..Default::default()
    };
    assert_eq!(ds.db.query(&q).unwrap().len(), 1);
    let lists = loupe::datasets::uco3d::db::set_lists(&root());
    assert_eq!(
        lists.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["all-categories", "static-categories"]
    );
    let q = SequenceQuery {
        set_list: Some(lists[1].1.clone()),
        ..Default::default()
    };
    assert_eq!(
        ds.db
            .query(&q)
            .unwrap()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        [DISTORTED]
    );
    // Twice in a row: the attached set list is detached again.
    assert_eq!(ds.db.query(&q).unwrap().len(), 1);
    let _ = NdcCamera::from_opencv(&ds.db.frames(DISTORTED).unwrap().0[0].camera.to_opencv());
}

/// The trigram caption index answers exactly what the full scan answers.
#[test]
fn the_caption_index_agrees_with_the_scan() {
    let ds = open();
    let dir = tempfile::tempdir().unwrap();
    let metadata = root().join("metadata.sqlite");
    let index = loupe::datasets::uco3d::caption_index::index_path(dir.path(), &metadata);
    loupe::datasets::uco3d::caption_index::ensure(&metadata, &index, &|| false).unwrap();
    assert!(index.is_file());
    for needle in [
        "STRIPES &",
        "round",
        "sphere",
        "10% more",
        "Broken on",
        "\"quoted",
        "zzz-none",
        "ph",
    ] {
        let scan = SequenceQuery {
            caption: needle.into(),
            ..Default::default()
        };
        let fast = SequenceQuery {
            caption_index: Some(index.clone()),
            ..scan.clone()
        };
        let a: Vec<_> = ds
            .db
            .query(&scan)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        let b: Vec<_> = ds
            .db
            .query(&fast)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(a, b, "{needle}");
    }
    let q = SequenceQuery {
        caption: "sphere".into(),
        caption_index: Some(index),
        ..Default::default()
    };
    assert_eq!(ds.db.query(&q).unwrap()[0].name, DISTORTED);
}
