// Lint rules for the TypeScript program, harness and tests.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["node_modules/**", "build/**", ".pulumi/**", ".venv/**", ".e2e/**", "reports/**"] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        languageOptions: { globals: { process: "readonly", console: "readonly", __dirname: "readonly", require: "readonly", module: "readonly", Buffer: "readonly" } },
        rules: {
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
            "@typescript-eslint/no-require-imports": ["error", { allowAsImport: true }],
        },
    },
    {
        // Dynamic providers are serialized into state and must load modules at call time.
        files: ["tests/e2e/harness/fixtures/**/*.ts"],
        rules: { "@typescript-eslint/no-require-imports": "off" },
    },
    {
        files: ["tests/**/*.ts", "e2e/**/*.ts"],
        rules: { "@typescript-eslint/no-explicit-any": "off" },
    },
);
