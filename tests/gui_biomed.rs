//! GUI tests of the BioMed workspace on the committed BIOMEDICA fixture: open shards,
//! count, filter, search, navigate, snapshot. Expected numbers come from the fixture's
//! manifest, not from the code under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{DroppedPath, Start, settle, snapshot};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use loupe::LoupeApp;
use loupe::routing::WorkspaceKind;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn harness(open: Vec<PathBuf>) -> Harness<'static, LoupeApp> {
    common::harness(Start {
        open,
        ..Default::default()
    })
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/biomedica")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(fixture().join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn a_dropped_shard_replaces_the_demo_and_further_drops_add_to_it() {
    let m = manifest();
    let per_shard = &m["counts"]["per_shard"];
    let mut h = harness(Vec::new());
    // The demo is indexed in the background at start.
    assert_eq!(h.state().biomed().catalog().len(), 31);
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(
            fixture().join("other/000000.tar"),
        )));
    settle(&mut h);
    assert_eq!(h.state().settings.tab, WorkspaceKind::BioMed);
    let other = per_shard["other/000000.tar"].as_u64().unwrap() as usize;
    assert_eq!(h.state().biomed().visible_count(), other);
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(
            fixture().join("noncommercial"),
        )));
    settle(&mut h);
    let nc = per_shard["noncommercial/000000.tar"].as_u64().unwrap() as usize;
    assert_eq!(h.state().biomed().visible_count(), other + nc);
    // The whole fixture root (subset folders beside a manifest) is a shard folder too;
    // its damaged/ shards come along and are reported.
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(fixture())));
    settle(&mut h);
    assert!(
        h.state()
            .biomed()
            .catalog()
            .reports()
            .any(|r| r.contains("truncated.tar"))
    );
}

#[test]
fn the_figure_opens_in_a_zoomable_window() {
    let mut h = harness(vec![fixture().join("other")]);
    assert!(h.query_by_label("Scroll to zoom, drag to pan").is_none());
    h.get_by_label("Figure (click to zoom)").click();
    settle(&mut h);
    h.get_by_label("Scroll to zoom, drag to pan");
    h.get_by_label("Figure");
}

fn good_folders() -> Vec<PathBuf> {
    ["commercial", "noncommercial", "other"]
        .iter()
        .map(|s| fixture().join(s))
        .collect()
}

#[test]
fn opened_shards_are_indexed_counted_filtered_and_searched() {
    let m = manifest();
    let total = m["counts"]["totals"]["samples"].as_u64().unwrap() as usize;
    let mut h = harness(good_folders());
    assert_eq!(h.state().settings.tab, WorkspaceKind::BioMed);
    assert_eq!(h.state().biomed().visible_count(), total);
    h.get_by_label(&format!("{total} of {total} items"));
    h.get_by_label("4 shards · 40 samples");

    // A licence toggle narrows the grid to the manifest's count for that licence.
    let nc_nd = m["counts"]["license"]["CC BY-NC-ND"].as_u64().unwrap() as usize;
    licence_toggle(&h, "CC BY-NC-ND").click();
    settle(&mut h);
    assert_eq!(h.state().biomed().visible_count(), nc_nd);
    h.get_by_label(&format!("{nc_nd} of {total} items"));
    licence_toggle(&h, "CC BY-NC-ND").click();
    settle(&mut h);
    assert_eq!(h.state().biomed().visible_count(), total);

    // Caption search through the search box finds exactly the manifest's hits.
    let query = &m["search"]["queries"][0];
    assert_eq!(query["query"], "microaneurysm");
    let want: std::collections::BTreeSet<&str> = query["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["key"].as_str().unwrap())
        .collect();
    let search = || (egui::accesskit::Role::TextInput, "Search text");
    h.get_by_role_and_label(search().0, search().1).click();
    h.run_steps(2);
    h.get_by_role_and_label(search().0, search().1)
        .type_text("microaneurysm");
    settle(&mut h);
    let got: std::collections::BTreeSet<&str> =
        h.state().biomed().visible_keys().into_iter().collect();
    assert_eq!(got, want);
    // The best hit is selected and its metadata was read from the shard.
    let selected = h.state().biomed().selected_key().unwrap().to_owned();
    assert!(want.contains(selected.as_str()));
    let meta = h.state().biomed().detail().expect("detail loaded");
    assert_eq!(meta.key, selected);
    assert!(meta.caption.to_lowercase().contains("microaneurysm"));
    h.get_by_label("3 of 40 items");
    snapshot(&mut h, "biomed_search");
}

/// Large catalogs are filtered on the worker (`ASYNC_FILTER_FROM`); forcing that path on
/// the fixture gives the manifest's hits, and a query typed before the previous one's
/// job finished wins over it (the stale job is cancelled, its result never shown).
#[test]
fn filtering_on_the_worker_shows_the_latest_query() {
    let m = manifest();
    let hits = |i: usize| -> std::collections::BTreeSet<String> {
        m["search"]["queries"][i]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(m["search"]["queries"][1]["query"], "fundus");
    assert_eq!(m["search"]["queries"][7]["query"], "greyscale");
    let mut h = harness(good_folders());
    let total = h.state().biomed().visible_count();
    {
        let (b, _) = h.state_mut().biomed_mut();
        b.set_async_filter_from(0);
        b.set_query("fundus");
        assert!(b.is_filtering(), "the query runs as a job");
        // The shown items stay until the job's answer arrives.
        assert_eq!(b.visible_count(), total);
        b.set_query("greyscale");
    }
    settle(&mut h);
    let b = h.state().biomed();
    assert!(!b.is_filtering());
    let got: std::collections::BTreeSet<String> =
        b.visible_keys().into_iter().map(str::to_owned).collect();
    assert_eq!(got, hits(7));
    assert!(hits(7).contains(b.selected_key().unwrap()));
    h.get_by_label(&format!("{} of {total} items", hits(7).len()));
}

#[test]
fn the_grid_moves_by_keyboard_and_shows_the_fixture() {
    let mut h = harness(good_folders());
    let keys: Vec<String> = h
        .state()
        .biomed()
        .visible_keys()
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(h.state().biomed().selected_key(), Some(keys[0].as_str()));
    // Focus the grid area (not the search box) so arrow keys navigate.
    h.key_press(egui::Key::ArrowRight);
    settle(&mut h);
    assert_eq!(h.state().biomed().selected_key(), Some(keys[1].as_str()));
    h.key_press(egui::Key::End);
    settle(&mut h);
    assert_eq!(
        h.state().biomed().selected_key(),
        Some(keys.last().unwrap().as_str())
    );
    h.key_press(egui::Key::Home);
    settle(&mut h);
    // Down moves a whole row: the grid has more than one column at this size.
    h.key_press(egui::Key::ArrowDown);
    settle(&mut h);
    let pos = keys
        .iter()
        .position(|k| Some(k.as_str()) == h.state().biomed().selected_key())
        .unwrap();
    assert!(pos > 1, "down moved by {pos}");
    h.key_press(egui::Key::Home);
    settle(&mut h);
    snapshot(&mut h, "biomed_fixture");
}

#[test]
fn damaged_shards_are_reported_and_what_precedes_the_damage_is_shown() {
    let m = manifest();
    let mut expected = 0;
    for d in m["damaged"].as_array().unwrap() {
        expected += d["expect"]["readable_samples"].as_array().unwrap().len()
            + d["expect"]["affected_samples"].as_array().unwrap().len();
    }
    let mut h = harness(vec![fixture().join("damaged")]);
    assert_eq!(h.state().biomed().catalog().len(), expected);
    let reports: Vec<String> = h
        .state()
        .biomed()
        .catalog()
        .reports()
        .map(str::to_owned)
        .collect();
    for (file, what) in [
        (
            "bad_header_checksum.tar",
            "bad_header_checksum at offset 39424",
        ),
        ("truncated.tar", "unexpected_eof at offset 63607"),
        ("member_past_eof.tar", "member_past_eof at offset 88064"),
        ("no_end_of_archive.tar", "missing_end_of_archive"),
        ("invalid_utf8_caption.tar", "invalid_utf8"),
        ("corrupt_jpeg.tar", "jpeg_decode_error"),
        ("missing_member.tar", "missing_member"),
    ] {
        assert!(
            reports.iter().any(|r| r.contains(file) && r.contains(what)),
            "{file}: {what} not in {reports:#?}"
        );
    }
    h.get_by_label_contains("Problems (");
    // "Samples with problems only" keeps the flagged ones.
    h.get_by_label("Samples with problems only").click();
    settle(&mut h);
    let flagged = h.state().biomed().visible_count();
    assert!(flagged > 0 && flagged < expected, "{flagged}");
}

/// The licence filter's toggle (the inspector may show the same text as a label).
fn licence_toggle<'a>(h: &'a Harness<'_, LoupeApp>, name: &'a str) -> egui_kittest::Node<'a> {
    h.get_by_role_and_label(egui::accesskit::Role::Button, name)
}
