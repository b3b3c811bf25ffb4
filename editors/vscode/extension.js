// The VS Code side of the harness language: the grammar and language configuration are declared in
// package.json; this starts `harnessc lsp` (the language server of harnessc/lsp/) for `.harness` files
// and restarts it when its settings change or on the command "Harness: Restart the language server".
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function createClient() {
  const config = vscode.workspace.getConfiguration("harness");
  const serverOptions = {
    command: config.get("server.command", "harnessc"),
    args: config.get("server.args", ["lsp"]),
    transport: TransportKind.stdio,
  };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "harness" },
      { scheme: "untitled", language: "harness" },
    ],
    initializationOptions: {
      purpose: config.get("purpose", "any"),
      allowRoots: config.get("allowRoots", []),
    },
  };
  return new LanguageClient("harness", "Harness language server", serverOptions, clientOptions);
}

async function start() {
  client = createClient();
  try {
    await client.start();
  } catch (error) {
    const command = vscode.workspace.getConfiguration("harness").get("server.command", "harnessc");
    vscode.window.showErrorMessage(
      `Harness: could not start \`${command} lsp\` (${error.message || error}). ` +
        "Install harnessc with the editor extra (pip install -e \".[editor]\") or set harness.server.command.",
    );
  }
}

async function restart() {
  if (client) {
    const running = client;
    client = undefined;
    try {
      await running.stop();
    } catch (error) {
      // a server that never started cannot be stopped; start a new one all the same
    }
  }
  await start();
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("harness.restartServer", restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("harness.server") || event.affectsConfiguration("harness.purpose") ||
          event.affectsConfiguration("harness.allowRoots")) {
        restart();
      }
    }),
  );
  await start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
