import { defineConfig } from "vite";

// One script and one stylesheet under dist/assets: the C++ build embeds dist/ and
// `tokenprobe report` inlines both into a single HTML file.
export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, modulePreload: { polyfill: false }, cssCodeSplit: false },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/v1": "http://127.0.0.1:8080" } },
});
