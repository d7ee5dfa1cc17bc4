//! Gives libnol.so its SONAME (`libnol.so.<major>`), as a C library installed in a prefix has.
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnol.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
