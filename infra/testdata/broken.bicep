// Deliberately broken: the parse check must report every problem here.
extension 'br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0'
extension microsoftGraphV1 with {
}
param name string =
resource x 'Microsoft.Web/sites@2024-04-01' = {
  name: name
