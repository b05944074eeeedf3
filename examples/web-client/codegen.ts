import type { CodegenConfig } from "@graphql-codegen/cli";

// Types come from the schema the server generates (`tandem schema`), so a change to it that
// breaks one of our operations breaks `npm run build`.
const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.ts", "!src/gql/**/*"],
  generates: {
    "src/gql/": {
      preset: "client",
      config: {
        // Every scalar is named here; an unknown one fails codegen instead of becoming `any`.
        strictScalars: true,
        scalars: {
          DateTime: "string",
          // Long is a JSON number exact to 2^53 - 1 (see the schema's doc).
          Long: "number",
        },
        enumsAsTypes: true,
        useTypeImports: true,
        // ESM output: relative imports end in .js, as Node and `moduleResolution: NodeNext` need.
        emitLegacyCommonJSImports: false,
      },
      presetConfig: { fragmentMasking: false },
    },
  },
  ignoreNoDocuments: false,
};

export default config;
