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
          // Long is a JSON number up to 2^53 - 1 and a string of digits beyond it (see the
          // schema's doc). Past 2^53 are only program-wide money figures at extreme settings,
          // which this shopper's app never reads: its points and costs are numbers.
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
