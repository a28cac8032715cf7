//! What a component file is: a component at all, which world it fits, what it
//! imports and exports.

use std::path::Path;

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;
use crate::manifest::PluginKind;

/// The imports and exports of a compiled component, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ComponentShape {
    /// Imported instance and function names, e.g. `wasi:http/outgoing-handler@0.2.4`.
    pub imports: Vec<String>,
    /// Exported names, e.g. `omnigate:plugin/delivery@0.1.0`.
    pub exports: Vec<String>,
}

/// Refuses anything that is not a WebAssembly component, with a message that
/// says what it is instead.
pub fn check_is_component(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if wasmparser::Parser::is_component(bytes) {
        Ok(())
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        Err(LoadError::CoreModule {
            path: path.to_owned(),
        })
    } else {
        Err(LoadError::NotWasm {
            path: path.to_owned(),
        })
    }
}

impl ComponentShape {
    /// Reads the shape of `component`.
    pub fn of(engine: &Engine, component: &Component) -> ComponentShape {
        let ty = component.component_type();
        let mut imports: Vec<String> = ty
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let mut exports: Vec<String> = ty
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        imports.sort();
        exports.sort();
        ComponentShape { imports, exports }
    }

    /// The plugin kind whose interface this component exports, if any.
    pub fn world(&self) -> Option<PluginKind> {
        [PluginKind::ChannelAdapter, PluginKind::ScoringModel]
            .into_iter()
            .find(|kind| self.exports_interface(*kind).is_some())
    }

    /// Whether the component imports `wasi:http`.
    pub fn uses_http(&self) -> bool {
        self.imports.iter().any(|i| i.starts_with("wasi:http/"))
    }

    fn exports_interface(&self, kind: PluginKind) -> Option<&str> {
        let prefix = format!("{}@", kind.export_interface());
        self.exports
            .iter()
            .find(|e| e.starts_with(&prefix))
            .map(String::as_str)
    }

    /// Checks that the component exports the interface of `kind` at the WIT
    /// version `wit` (`omnigate:plugin@0.1.0`) and imports only what a plugin
    /// of that kind may import.
    pub fn check_world(&self, path: &Path, kind: PluginKind, wit: &str) -> Result<(), LoadError> {
        let wrong = |message: String| LoadError::WrongWorld {
            path: path.to_owned(),
            world: kind.world(),
            message,
        };
        let version = wit.rsplit_once('@').map_or("", |(_, v)| v);
        let expected = format!("{}@{version}", kind.export_interface());
        if !self.exports.contains(&expected) {
            let hint = match self.world() {
                Some(other) if other != kind => format!(
                    "; it is a {other} plugin: set `kind = \"{other}\"` in its manifest if that is intended"
                ),
                _ => match self.exports_interface(kind) {
                    Some(found) => format!("; it was built against `{found}`, not {wit}"),
                    None => String::new(),
                },
            };
            return Err(wrong(format!(
                "it does not export `{expected}` (it exports: {}){hint}",
                list(&self.exports)
            )));
        }
        for import in &self.imports {
            let allowed = import.starts_with("wasi:")
                && (kind == PluginKind::ChannelAdapter || !import.starts_with("wasi:http/"))
                || import.starts_with("omnigate:plugin/types@")
                || import.starts_with("omnigate:plugin/config@");
            if !allowed {
                let why = if import.starts_with("wasi:http/") {
                    "a scoring model is pure and may not use the network".to_owned()
                } else {
                    "this host does not provide it".to_owned()
                };
                return Err(wrong(format!("it imports `{import}`: {why}")));
            }
        }
        Ok(())
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(imports: &[&str], exports: &[&str]) -> ComponentShape {
        ComponentShape {
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
        }
    }

    const WIT: &str = "omnigate:plugin@0.1.0";

    #[test]
    fn a_scoring_model_loaded_as_an_adapter_is_named_for_what_it_is() {
        let s = shape(&[], &["omnigate:plugin/scoring@0.1.0"]);
        let err = s
            .check_world(Path::new("x.wasm"), PluginKind::ChannelAdapter, WIT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a channel-adapter plugin"), "{err}");
        assert!(err.contains("it is a scoring-model plugin"), "{err}");
    }

    #[test]
    fn a_component_built_against_another_wit_version_says_so() {
        let s = shape(&[], &["omnigate:plugin/delivery@0.2.0"]);
        let err = s
            .check_world(Path::new("x.wasm"), PluginKind::ChannelAdapter, WIT)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("built against `omnigate:plugin/delivery@0.2.0`"),
            "{err}"
        );
    }

    #[test]
    fn a_scoring_model_that_imports_http_is_refused() {
        let s = shape(
            &["wasi:http/outgoing-handler@0.2.4"],
            &["omnigate:plugin/scoring@0.1.0"],
        );
        let err = s
            .check_world(Path::new("x.wasm"), PluginKind::ScoringModel, WIT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("may not use the network"), "{err}");
    }

    #[test]
    fn unknown_imports_are_refused() {
        let s = shape(&["acme:spy/keylogger"], &["omnigate:plugin/delivery@0.1.0"]);
        let err = s
            .check_world(Path::new("x.wasm"), PluginKind::ChannelAdapter, WIT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("imports `acme:spy/keylogger`"), "{err}");
    }

    #[test]
    fn garbage_and_core_modules_are_told_apart() {
        let garbage = check_is_component(Path::new("g.wasm"), b"hello world").unwrap_err();
        assert!(matches!(garbage, LoadError::NotWasm { .. }));
        let core = wat::parse_str("(module)").unwrap();
        let err = check_is_component(Path::new("c.wasm"), &core).unwrap_err();
        assert!(matches!(err, LoadError::CoreModule { .. }));
    }
}
