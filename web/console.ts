/// <reference lib="dom" />
/**
 * The live console (placeholder until the console lands).
 *
 * @module
 */

document.getElementById("app")!.textContent = "clu-ws console";
