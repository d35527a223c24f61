// Package infra holds the Azure deployment as code and, in its tests, every
// check of it that can run without Azure.
//
// The files: main.bicep (subscription scope: the resource group and every
// resource, DESIGN section 7), modules/*.bicep, entra.bicep (the Entra ID app
// registrations through the Microsoft Graph Bicep extension pinned in
// bicepconfig.json), main.parameters.json (for azd), deploy.sh (the az
// path), and check/ (a pinned npm project that parses Bicep with the
// tree-sitter Bicep grammar and prints the syntax trees as JSON).
//
// The tests parse every .bicep file with that grammar and assert on the
// trees: the app settings are exactly the handler's settings contract (the
// names are read from cmd/handler's source with go/ast, not from a list),
// secrets are Key Vault references, no connection string or account key
// exists, the role definition IDs, runtime custom on Flex Consumption,
// keyVaultReferenceIdentity at the site's top-level properties (case C17)
// and the daemon's federated credential wiring. What only Azure can check
// (what-if, deployment, name availability, Graph permissions) is listed in
// docs/DEPLOY.md.
//
// There is no non-test code here: nothing imports this package.
package infra
