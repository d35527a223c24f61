// The one extension form the checker blanks out; the rest must parse.
extension microsoftGraphV1 // pinned in bicepconfig.json
  extension indented
param name string
