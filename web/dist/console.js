// ../../tmp/ph/console.ts
document.getElementById("app").textContent = "clu-ws console";
