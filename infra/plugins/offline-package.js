'use strict';

// `serverless package` without AWS: the one AWS call packaging makes is the layer compiler's
// DescribeStacks (compareWithLastLayer: reuse the S3 key of an unchanged layer already
// deployed), which needs credentials and a network. Under the `package` command it is skipped,
// so CI builds and lints the template offline. `deploy` keeps it: an unchanged layer is not
// uploaded and published again.

class OfflinePackage {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.log = log;
    this.hooks = {
      initialize: () => this.disableNetworkCalls(),
    };
  }

  disableNetworkCalls() {
    const [command] = this.serverless.processedInput.commands;
    if (command !== 'package') return;
    let patched = 0;
    for (const plugin of this.serverless.pluginManager.plugins) {
      if (typeof plugin.compareWithLastLayer === 'function') {
        plugin.compareWithLastLayer = async () => {};
        patched += 1;
      }
    }
    if (!patched) {
      // osls changed: fail loudly rather than reach for credentials mid-package.
      throw new this.serverless.classes.Error(
        'offline-package: no compareWithLastLayer to disable; check plugins/offline-package.js against this osls version'
      );
    }
    if (this.log) this.log.info('offline-package: layer comparison with the deployed stack skipped');
  }
}

module.exports = OfflinePackage;
