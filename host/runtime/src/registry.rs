//! The plugins a runtime serves, by name. Loading, replacing and unloading
//! never disturb calls in flight: a call holds its own `Arc<Plugin>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tracing::info;

use crate::error::LoadError;
use crate::manifest::Manifest;
use crate::plugin::Plugin;
use crate::runtime::Shared;

/// Loaded plugins by name.
pub struct Registry {
    shared: Arc<Shared>,
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
}

impl Registry {
    pub(crate) fn new(shared: Arc<Shared>) -> Registry {
        Registry {
            shared,
            plugins: RwLock::new(BTreeMap::new()),
        }
    }

    /// Loads the plugin of the manifest at `path` and serves it, replacing a
    /// plugin of the same name. Calls already running on the old one finish
    /// on it. Returns the replaced plugin, if any. On error nothing changes.
    pub fn load(&self, path: &Path) -> Result<Option<Arc<Plugin>>, LoadError> {
        let manifest = Manifest::load(path)?;
        let plugin = Arc::new(Plugin::load(&self.shared, manifest)?);
        Ok(self.insert(plugin))
    }

    /// Loads every manifest (`*.toml`) in `dir`. All or nothing: if one
    /// fails, none is served and the error names it.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<Arc<Plugin>>, LoadError> {
        let manifests = manifests_in(dir)?;
        let mut loaded: Vec<Arc<Plugin>> = Vec::with_capacity(manifests.len());
        for path in manifests {
            let plugin = Plugin::load(&self.shared, Manifest::load(&path)?)?;
            if let Some(other) = loaded
                .iter()
                .find(|p| p.manifest().name == plugin.manifest().name)
            {
                return Err(LoadError::Duplicate {
                    plugin: plugin.manifest().name.clone(),
                    first: other.manifest().path.clone(),
                    second: path,
                });
            }
            loaded.push(Arc::new(plugin));
        }
        for plugin in &loaded {
            self.insert(plugin.clone());
        }
        Ok(loaded)
    }

    /// Makes the served set equal to the manifests in `dir`: loads new and
    /// changed plugins, unloads those whose manifest is gone. All or nothing:
    /// on error the served set is unchanged. Returns the names loaded and
    /// unloaded.
    pub fn sync_dir(&self, dir: &Path) -> Result<(Vec<String>, Vec<String>), LoadError> {
        let manifests = manifests_in(dir)?;
        let mut fresh: Vec<Arc<Plugin>> = Vec::new();
        let mut keep = Vec::new();
        for path in manifests {
            let manifest = Manifest::load(&path)?;
            if let Some(other) = fresh.iter().find(|p| p.manifest().name == manifest.name) {
                return Err(LoadError::Duplicate {
                    plugin: manifest.name,
                    first: other.manifest().path.clone(),
                    second: path,
                });
            }
            keep.push(manifest.name.clone());
            // Unchanged manifest and component: keep the running plugin.
            if self
                .get(&manifest.name)
                .is_some_and(|p| *p.manifest() == manifest)
            {
                continue;
            }
            fresh.push(Arc::new(Plugin::load(&self.shared, manifest)?));
        }
        let loaded = fresh.iter().map(|p| p.manifest().name.clone()).collect();
        for plugin in fresh {
            self.insert(plugin);
        }
        let gone: Vec<String> = self
            .list()
            .iter()
            .map(|p| p.manifest().name.clone())
            .filter(|name| !keep.contains(name))
            .collect();
        for name in &gone {
            self.unload(name);
        }
        Ok((loaded, gone))
    }

    fn insert(&self, plugin: Arc<Plugin>) -> Option<Arc<Plugin>> {
        let m = plugin.manifest();
        info!(
            plugin = %m.name, version = %m.version, kind = %m.kind,
            sha256 = %m.sha256, from_cache = plugin.from_cache(), "serving plugin"
        );
        let name = m.name.clone();
        match self.plugins.write() {
            Ok(mut plugins) => plugins.insert(name, plugin),
            Err(poisoned) => poisoned.into_inner().insert(name, plugin),
        }
    }

    /// Stops serving `name`. Calls already running finish.
    pub fn unload(&self, name: &str) -> Option<Arc<Plugin>> {
        let removed = match self.plugins.write() {
            Ok(mut plugins) => plugins.remove(name),
            Err(poisoned) => poisoned.into_inner().remove(name),
        };
        if removed.is_some() {
            info!(plugin = %name, "unloaded plugin");
        }
        removed
    }

    /// The plugin called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        match self.plugins.read() {
            Ok(plugins) => plugins.get(name).cloned(),
            Err(poisoned) => poisoned.into_inner().get(name).cloned(),
        }
    }

    /// Every plugin, by name.
    pub fn list(&self) -> Vec<Arc<Plugin>> {
        match self.plugins.read() {
            Ok(plugins) => plugins.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        }
    }
}

/// The `*.toml` files directly in `dir`, sorted.
pub fn manifests_in(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}
