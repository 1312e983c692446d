// GraphQL Code Generator: TypeScript types for the operations in recommendations.js, from
// the service's schema. `npm run codegen` rewrites generated/graphql.ts.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["recommendations.js"],
  generates: {
    "generated/graphql.ts": {
      plugins: ["typescript", "typescript-operations"],
      config: {
        avoidOptionals: true,
        enumsAsTypes: true,
        skipTypename: true,
        scalars: { Vector: "number[]" },
      },
    },
  },
};

export default config;
