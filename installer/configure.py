"""satchel config apply: a configuration change is a release."""

from __future__ import annotations

from dataclasses import replace

from bundler.errors import SpecError
from bundler.progress import QUIET, Reporter

from . import releases
from .config import config_info, resolve_settings
from .options import InstallOptions, Outcome
from .state import App
from .switch import deploy, recover
from .targets import RenderRequest, for_release


def apply_config(app: App, opts: InstallOptions, reporter: Reporter = QUIET) -> Outcome:
    """A configuration change is a release: the current bundle, the new values, switched and
    health-checked like any install, and rolled back (old values included) if it fails."""
    app.host.init()
    with app.host.lock(opts.lock_wait):
        recover(app, opts, reporter)
        current = app.current()
        if current is None:
            raise SpecError("no release is installed; install a bundle first")
        release = releases.load(app, current)
        target = for_release(release)
        if not target.takes_settings:
            raise SpecError(f"config apply is for targets that take site settings; {target.name} takes "
                            "--values/--set at install")
        target.check(release.project, app.owned_dirs())
        manifest = release.manifest()
        resolved = resolve_settings(app, manifest, opts.settings, target.name)
        new_id = releases.new_id(app, manifest.version, "config", bare=False)
        tmp = releases.staging_dir(app, new_id)
        rendered = target.render(RenderRequest(manifest, app.host.store, release.info.registry, False, tmp,
                                                 project=release.project))
        info = replace(release.info, **rendered, **config_info(app, new_id, manifest, resolved))
        releases.write_metadata(tmp, (release.path / "manifest.json").read_bytes(),
                                (release.path / "signatures.json").read_bytes(), info)
        releases.commit(app, tmp, new_id)
        app.begin(op="config", to=new_id, **{"from": current})
        deploy(app, new_id, current, opts, reporter, "configured")
        return Outcome("configured", new_id, current, app=app.name)
