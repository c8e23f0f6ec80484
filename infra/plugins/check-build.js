'use strict';

// Fails packaging when the artifacts in build/ do not match this configuration: a layer built
// for x86_64 deployed as arm64 (or for python3.13 on python3.12) imports nothing at cold
// start. scripts/build_layers.py writes build/manifest.json with what it built.

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

class CheckBuild {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:initialize': () => this.check(),
    };
  }

  check() {
    const { service, serviceDir } = this.serverless;
    const Error = this.serverless.classes.Error;
    // The folder the layer's artifact is in: ../build (scripts/build_layers.py --out).
    const build = path.dirname(path.resolve(serviceDir, service.layers.core.package.artifact));
    const manifestPath = path.join(build, 'manifest.json');
    if (!fs.existsSync(manifestPath)) {
      throw new Error(`check-build: ${manifestPath} is missing: run \`npm run build\` first`);
    }
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    const wanted = { architecture: service.provider.architecture, runtime: service.provider.runtime };
    for (const [key, value] of Object.entries(wanted)) {
      if (manifest[key] !== value) {
        throw new Error(
          `check-build: build/ holds a ${manifest.architecture} ${manifest.runtime} build but the ` +
            `${key} parameter is ${value}: rebuild with LAMBDA_ARCHITECTURE=${wanted.architecture} ` +
            `LAMBDA_RUNTIME=${wanted.runtime} npm run build`
        );
      }
    }
    for (const [name, sha256] of Object.entries(manifest.zips || {})) {
      const file = path.join(build, name);
      const actual = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
      if (actual !== sha256) {
        throw new Error(`check-build: ${file} is not the one build/manifest.json lists: rebuild`);
      }
    }
  }
}

module.exports = CheckBuild;
