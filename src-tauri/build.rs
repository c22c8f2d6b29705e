fn main() {
    // The UI is embedded when `generate_context!` expands: rebuild when any of it changes.
    println!("cargo:rerun-if-changed=ui");
    tauri_build::build()
}
